"""The science images (images/): versioned, locked, built and smoke-tested.

``models`` (images/images.yaml: the images, their CalVer tags), ``locks`` (each image's
hashed lock), ``consistency`` (images, locks, platform.yaml, the chart and the gateway
agree), ``builder`` (docker, podman or buildah, whichever runs), ``smoke`` (checks inside an
image or a venv of its lock) and ``service`` (what `parhelion images` does).
"""
