"""Prices and the cost rule: what a node costs, and what share of it a pod pays.

``catalog`` (the dated price catalog, shipped and live-reloaded), ``cost`` (the cost rule),
``node`` (the local platform's virtual node, priced), ``aws`` (all I/O to AWS's Price List
and EC2 APIs) and ``refresh`` (a new catalog from AWS). A library: it imports only
``platform_tools.config``; the accounting service, burst reports and class plans use it.
"""
