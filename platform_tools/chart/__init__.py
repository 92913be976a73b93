"""The Helm chart: the helm binary, values schema and rendering."""
