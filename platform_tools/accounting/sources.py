"""Where the meter reads what runs: the protocol both backends' sources implement.

The accounting service samples one ``Sources`` every ``sample_interval_seconds``: the local
platform's hub, gateway and home folders (``local_sources.LocalSources``) or the Kubernetes
API's pods, nodes and claims (``kubernetes_sources.KubernetesSources``). A source that
cannot answer raises ``SourceError`` and the sample is skipped whole: a ledger never holds
half a sample.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from platform_tools.ledger.store import Observation


class SourceError(RuntimeError):
    """A source did not answer; the sample is skipped."""


@runtime_checkable
class Sources(Protocol):
    async def observe(self) -> list[Observation]:
        """Everything running now, priced, as ledger observations (SourceError if unreachable)."""
        ...
