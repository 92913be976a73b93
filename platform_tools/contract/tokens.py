"""Service-to-service tokens: how they are sent and the one rule that checks them.

The hub and the gateway send the accounting token to the accounting service; the accounting
service sends it to the gateway's Parhelion routes. Both sides check it here, in constant
time (``hmac.compare_digest``), accepting JupyterHub's ``token`` and OAuth's ``Bearer``
schemes, and never an empty expected token.
"""

from __future__ import annotations

from hmac import compare_digest


def authorization(token: str) -> dict[str, str]:
    """The header that carries ``token`` (JupyterHub's scheme)."""
    return {"Authorization": f"token {token}"}


def token_matches(header: str | None, expected: str) -> bool:
    """Does the ``Authorization`` header carry ``expected``? False if either is empty."""
    if not expected or not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        return False
    return compare_digest(token.strip().encode(), expected.encode())
