"""A fair line for starting servers: at most N start at once, first come first served.

On two cores, 80 students pressing Start within a minute made 80 Jupyter servers import
themselves at once; each start took minutes and the hub's proxy, starved of CPU, answered too
late (issue 18). With a line, the machine starts a few servers at a time, each in seconds, and
every waiting student reads their place on the spawn-pending page ("You are number 7 in line;
3 servers are starting"), updated as the line moves.

Where the wait is: after the pre-spawn checks (a refused student does not queue first) and
before ``Spawner.start``, whose ``start_timeout`` therefore never counts the wait. The slot is
held until the new server answers HTTP (its import is the costly part), then freed; it is also
freed when the start fails, times out or is cancelled (the student pressed Stop, or left and
an admin stopped them), and when the server is stopped (``post_stop_hook`` runs on every
stop, also the clean-up after a failed start), so no exception leaks a slot. A student waiting
in line who is stopped leaves the line.

JupyterHub's own ``concurrent_spawn_limit`` counts waiting students as pending spawns and
answers 429 beyond it; with this line it is switched off (``hub/local.py``): the line is the
limit, and it is fair and visible where a 429 is neither.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from weakref import WeakKeyDictionary

import aiohttp
from jupyterhub.httpclient import fetch
from jupyterhub.utils import maybe_future, utcnow
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable


def default_concurrent_spawns(cores: int | None = None) -> int:
    """Two starts per core: a server's start is CPU-bound, with some waiting on disk and on
    the hub, so two per core keep the cores busy without slowing each start down."""
    return 2 * max(1, cores or os.cpu_count() or 1)


class Ticket:
    """One student's place: in line, then holding a slot, then done (``release``)."""

    def __init__(self, queue: SpawnQueue, name: str):
        self.queue = queue
        self.name = name
        self.joined = time.monotonic()
        self._granted = asyncio.Event()
        self.done = False

    @property
    def granted(self) -> bool:
        return self._granted.is_set()

    async def wait(self) -> None:
        """Until this ticket holds a slot; cancelled or failed, it leaves the line."""
        try:
            await self._granted.wait()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Leave the line, or free the slot (idempotent)."""
        self.queue.release(self)

    def message(self) -> str | None:
        """What the student reads while waiting, or None once their server is starting."""
        place = self.queue.place(self)
        if place is None:
            return None
        starting = self.queue.starting
        servers = "1 server is" if starting == 1 else f"{starting} servers are"
        return (
            f"You are number {place} in line; {servers} starting "
            f"(this machine starts {self.queue.slots} at a time)."
        )


class SpawnQueue:
    """First come, first served, ``slots`` at a time. Event-loop bound, like the hub."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"a spawn queue needs at least one slot, not {slots}")
        self.slots = slots
        self._line: list[Ticket] = []
        self._holding: list[Ticket] = []
        self._changed = asyncio.Event()

    def join(self, name: str) -> Ticket:
        """A new ticket at the end of the line (given a slot at once if one is free)."""
        ticket = Ticket(self, name)
        self._line.append(ticket)
        self._admit()
        self._notify()
        return ticket

    def release(self, ticket: Ticket) -> None:
        ticket.done = True
        if ticket in self._line:
            self._line.remove(ticket)
        elif ticket in self._holding:
            self._holding.remove(ticket)
        else:
            return
        self._admit()
        self._notify()

    def resize(self, slots: int) -> None:
        """A new limit from the config; more slots admit the next in line now, fewer take
        effect as starts finish (nobody's start is interrupted)."""
        if slots < 1:
            raise ValueError(f"a spawn queue needs at least one slot, not {slots}")
        if slots != self.slots:
            self.slots = slots
            self._admit()
            self._notify()

    def place(self, ticket: Ticket) -> int | None:
        """1 for the next in line; None when not waiting (starting, done or unknown)."""
        try:
            return self._line.index(ticket) + 1
        except ValueError:
            return None

    @property
    def starting(self) -> int:
        return len(self._holding)

    @property
    def waiting(self) -> int:
        return len(self._line)

    def next_change(self) -> asyncio.Event:
        """Set at the next change of the line. Take it *before* reading the line, so that a
        change in between is not missed."""
        return self._changed

    def _admit(self) -> None:
        while self._line and len(self._holding) < self.slots:
            ticket = self._line.pop(0)
            self._holding.append(ticket)
            ticket._granted.set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


_queues: WeakKeyDictionary[asyncio.AbstractEventLoop, SpawnQueue] = WeakKeyDictionary()


def shared_queue(slots: int) -> SpawnQueue:
    """The hub's one line (per event loop), at the configured size."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = SpawnQueue(slots)
    else:
        queue.resize(slots)
    return queue


class QueuedSpawner(LoggingConfigurable):
    """Mixin: a spawner that waits its turn in the hub's line before starting (first in the
    bases of a concrete spawner: ``class S(QueuedSpawner, LocalProcessSpawner)``)."""

    concurrent_spawns = Integer(
        0,
        config=True,
        help="Servers that may start at once; the others wait in line, first come first served, "
        "and see their place on the spawn-pending page. 0: no line.",
    )

    slot_seconds = Float(
        60.0,
        config=True,
        help="The longest one start holds its slot: a server still starting after it goes on "
        "starting, but the next in line is admitted (a student's own startup files, run as "
        "them, cannot stall the class's line).",
    )

    _ticket: Ticket | None = None

    def _queue(self) -> SpawnQueue | None:
        return shared_queue(self.concurrent_spawns) if self.concurrent_spawns > 0 else None

    def _leave_queue(self) -> None:
        if self._ticket is not None:
            self._ticket.release()

    async def run_pre_spawn_hook(self):
        await maybe_future(super().run_pre_spawn_hook())  # the checks first: refused, no wait
        queue = self._queue()
        if queue is None:
            return
        self._leave_queue()  # a ticket of an earlier start that was never stopped
        ticket = self._ticket = queue.join(self._log_name)
        if not ticket.granted:
            self.log.info("%s waits in line: %s", self._log_name, ticket.message())
            await ticket.wait()
            self._started_now()
        asyncio.get_running_loop().call_later(self.slot_seconds, ticket.release)

    def _started_now(self) -> None:
        """The server starts now, not when its student joined the line: JupyterHub stamped
        ``started`` before the pre-spawn hook, and the meter charges a server from it (a
        student must not pay for minutes in line, nor the idle culler count them)."""
        orm = getattr(self, "orm_spawner", None)
        if orm is None:
            return
        orm.started = orm.last_activity = utcnow(with_tz=False)
        self.user.db.commit()

    async def start(self):
        try:
            address = await super().start()
            if address and self._ticket is not None and not self._ticket.done:
                await self._until_it_answers(address)
            return address
        finally:
            self._leave_queue()

    def run_post_stop_hook(self):
        self._leave_queue()
        self._ticket = None  # the next start's progress waits for that start's ticket
        return super().run_post_stop_hook()

    async def _until_it_answers(self, address) -> None:
        """Hold the slot until the server answers HTTP, as the hub's own wait does (any
        answer below 500), at most ``http_timeout`` (then the hub's wait decides); a server
        that exits on the way fails the start at once."""
        url = address if isinstance(address, str) else f"http://{address[0]}:{address[1]}"
        url = url.rstrip("/") + (self.server.base_url if self.server else "/")
        deadline = time.monotonic() + self.http_timeout
        delay = 0.1
        while time.monotonic() < deadline:
            status = await self.poll()
            if status is not None:
                raise RuntimeError(f"the server exited while starting (status {status})")
            try:
                answer = await fetch(
                    url,
                    raise_for_status=False,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=10),
                )
                answer.release()
                if answer.status < 500:
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass  # not listening yet
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def progress(self) -> AsyncIterator[dict]:
        queue = self._queue()
        if queue is not None:
            async for event in self._place_in_line(queue):
                yield event
        async for event in super().progress():
            yield event

    async def _place_in_line(self, queue: SpawnQueue) -> AsyncIterator[dict]:
        """The student's place, each time it changes, until their server starts. Before the
        pre-spawn checks have put them in line there is no ticket yet: wait for it."""
        said = None
        while True:
            changed = queue.next_change()
            ticket = self._ticket
            if ticket is not None:
                message = ticket.message()
                if message is None:
                    yield {"progress": 20, "message": "Your turn: your server is starting."}
                    return
                if message != said:
                    said = message
                    yield {"progress": 10, "message": message}
            await changed.wait()
