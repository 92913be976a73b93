"""What Parhelion's processes agree on, in one place: the contract between them.

The hub, dask-gateway, the accounting service, the CLI and users' notebooks run as separate
processes (on one machine or as pods), written at different times. Everything one of them
says and another must understand lives here, and nowhere else as a literal:

* ``services`` — the hub services' names, the URL prefixes the hub's proxy gives them, the
  accounting service's and the gateway's API paths with the one way to join a base URL and a
  path (``accounting_api``, ``gateway_api``), and the hub services' registrations and roles
  for both backends (``hub_roles``);
* ``labels`` — the labels and annotations that mark what the meter charges, and for whom;
* ``tokens`` — how a service-to-service token is sent and checked (constant time);
* ``environment`` — the variables servers and Dask workers are given to reach data and Dask;
* ``exports`` — the CSV Parhelion hands to people's spreadsheets, with no cell that runs.

A test (tests/contract) joins each side to the other: the chart's values and the hub's
registration against the accounting service's real route table, the gateway's routes against
their callers. The contract imports only ``platform_tools.config``.
"""
