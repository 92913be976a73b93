"""Accounting's domain: where each user stands, what they may start, and what stops them.

``budgets`` (periods and standings), ``checks`` (the verdicts for a server or a cluster),
``sources`` (the ``Sources`` protocol) with ``local_sources`` and ``kubernetes_sources``
(what runs now, priced), ``enforcer`` (warnings and hard caps), ``report`` (what the spend
page, API and CLI say) and ``metrics``. Built on ``pricing`` and ``ledger``; the service
that runs it is ``platform_tools.services.accounting``.
"""
