"""One machine's facts and helpers, shared by the supervisor, the hub, the gateway and the CLI.

``statedir`` (the state directory and its secrets), ``runtime`` (ports, URLs and pids of a
running platform), ``environment`` (what servers and Dask workers are given), ``kernels``
(kernels on private Unix sockets), ``homes`` (users' home folders), ``tools`` (finding the
programs Parhelion runs), ``archive`` and ``aia_synthetic`` (the sample S3 archive). A
library: the processes themselves are started by ``platform_tools.services``.
"""
