"""Parhelion: a Daskhub for science, on one machine or on AWS EKS.

Sub-packages: ``config`` (platform.yaml), ``catalog`` (CloudCatalog), ``local`` (the
single-machine platform), ``hub`` and ``gateway`` (what hub_config/ calls), ``hubclient``
(driving a hub as a person does), ``cli`` (the ``parhelion`` command).
"""

__version__ = "0.1.0"
