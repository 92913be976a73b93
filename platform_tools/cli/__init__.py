"""The `parhelion` command line."""
