"""The ledger: what ran for whom, for how long, at what rate (SQLAlchemy 2 + alembic).

``store`` (``Ledger``, ``Observation``), ``schema`` (the tables) and ``migrations``. A
library with no Parhelion imports: the accounting service writes it, the CLI and class
commands read it, and SQLite and PostgreSQL hold it.
"""
