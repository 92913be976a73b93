"""Accounting: prices, the cost rule, metering, the ledger and enforcement."""
