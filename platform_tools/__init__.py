"""Parhelion: a Daskhub for science, on one machine or on AWS EKS.

Packages, in layers; a package imports only from its own layer (without a cycle) and the
layers below it (tests/test_architecture.py checks every import):

4. ``cli`` — the ``parhelion`` command: parses arguments and calls the layers below.
3. Processes: ``hub`` and ``gateway`` (what hub_config/ calls to configure JupyterHub and
   dask-gateway, both backends), ``services`` (the local supervisor and its services, the
   accounting service assembled by one factory), ``lab`` (Parhelion in each user's
   JupyterLab: the server extension's spend route and the prebuilt JupyterLab extension).
2. Domain: ``accounting`` (budgets, checks, meter sources, enforcer, reports), ``classes``
   (class mode: rosters, sessions, prewarm, close, plans, load tests), ``burst`` (Dask maps
   over S3 objects), ``images`` (the science images), ``chart`` (the Helm chart's values).
1. Libraries: ``contract`` (what processes agree on: service names, URL paths, labels,
   tokens, environment variables), ``pricing`` (price catalog, cost rule, AWS prices),
   ``ledger`` (the SQL ledger), ``catalog`` (CloudCatalog), ``clients`` (hub and Kubernetes
   clients), ``local`` (one machine: state directory, runtime, kernels, homes, the sample
   archive), ``archives`` (a notebook's way to its buckets).
0. ``config`` — platform.yaml: the one model, its loader, live reloading and policies.
"""

__version__ = "0.1.0"
