"""The spawn line: first come first served, N at a time, every slot freed whatever happens.

The queue itself, and the spawner mixin over a base spawner whose start the test controls
(the real hub's path is tested in tests/hub/test_spawn_load.py).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from traitlets.config import LoggingConfigurable

from platform_tools.hub.spawnqueue import QueuedSpawner, SpawnQueue, default_concurrent_spawns


def run(coroutine):
    return asyncio.run(coroutine)


def test_first_come_first_served_n_at_a_time():
    async def scenario():
        queue = SpawnQueue(2)
        tickets = [queue.join(f"s{i}") for i in range(5)]
        # waiters start in reverse order: the order of joining decides, not of waiting
        order: list[str] = []

        async def wait(ticket):
            await ticket.wait()
            order.append(ticket.name)

        tasks = [asyncio.create_task(wait(t)) for t in reversed(tickets)]
        await asyncio.sleep(0)
        assert sorted(order) == ["s0", "s1"] and queue.starting == 2 and queue.waiting == 3
        assert [queue.place(t) for t in tickets] == [None, None, 1, 2, 3]
        for done in tickets[:2]:
            done.release()
            await asyncio.sleep(0)
        tickets[2].release()
        tickets[3].release()
        await asyncio.gather(*tasks)
        assert order[2:] == ["s2", "s3", "s4"]
        assert queue.starting == 1 and queue.waiting == 0

    run(scenario())


def test_a_student_who_leaves_the_line_frees_their_place_and_moves_the_others_up():
    async def scenario():
        queue = SpawnQueue(1)
        first, second, third = (queue.join(n) for n in ("a", "b", "c"))
        waiting = asyncio.create_task(second.wait())
        await asyncio.sleep(0)
        assert third.message().startswith("You are number 2 in line; 1 server is starting")
        waiting.cancel()  # the student pressed Stop while waiting
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert queue.place(second) is None and queue.place(third) == 1
        first.release()
        await asyncio.wait_for(third.wait(), 1)  # c got the slot b left
        assert queue.starting == 1 and second.done

    run(scenario())


def test_release_is_idempotent_and_resize_admits_more():
    async def scenario():
        queue = SpawnQueue(1)
        a, b, c = (queue.join(n) for n in "abc")
        a.release()
        a.release()  # a second release must not free someone else's slot
        assert b.granted and not c.granted and queue.starting == 1
        queue.resize(3)
        assert c.granted and queue.starting == 2
        with pytest.raises(ValueError):
            SpawnQueue(0)

    run(scenario())


def test_default_is_two_per_core():
    assert default_concurrent_spawns(2) == 4 and default_concurrent_spawns(0) >= 2


class ControlledStart(LoggingConfigurable):
    """The spawner under the mixin: its start waits for the test, then fails or returns."""

    _log_name = "probe"

    def __init__(self, outcome: asyncio.Future, **kwargs):
        super().__init__(**kwargs)
        self.outcome = outcome
        self.started = asyncio.Event()
        self.post_stop_runs = 0

    def run_pre_spawn_hook(self):
        return None

    def run_post_stop_hook(self):
        self.post_stop_runs += 1

    async def start(self):
        self.started.set()
        return await self.outcome

    async def progress(self):
        yield {"progress": 50, "message": "Spawning server..."}


class Probe(QueuedSpawner, ControlledStart):
    pass


async def spawn(spawner: Probe, start_timeout: float = 5):
    """As JupyterHub's User.spawn: the pre-spawn hook, then start within ``start_timeout``
    (it may fail), then on failure a stop, whose post-stop hook always runs."""
    await spawner.run_pre_spawn_hook()
    try:
        return await asyncio.wait_for(spawner.start(), start_timeout)
    except Exception:
        spawner.run_post_stop_hook()
        raise


def test_a_failed_or_timed_out_start_frees_its_slot():
    async def scenario():
        loop = asyncio.get_running_loop()
        failing = Probe(loop.create_future(), concurrent_spawns=1)
        waiting = Probe(loop.create_future(), concurrent_spawns=1)
        first = asyncio.create_task(spawn(failing))
        await failing.started.wait()
        second = asyncio.create_task(spawn(waiting))
        await asyncio.sleep(0.05)
        assert not waiting.started.is_set()  # in line behind the one starting
        failing.outcome.set_exception(OSError("no such command"))
        with pytest.raises(OSError):
            await first
        await asyncio.wait_for(waiting.started.wait(), 1)  # the failure freed the slot
        # the one now starting is cancelled (start_timeout or the student's Stop): freed too
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert waiting._queue().starting == 0 and waiting._queue().waiting == 0

    run(scenario())


def test_a_start_that_hangs_holds_its_slot_no_longer_than_slot_seconds():
    """A student's own startup config (run as them) may sleep: past ``slot_seconds`` the next
    student in line is admitted while the slow start goes on."""

    async def scenario():
        loop = asyncio.get_running_loop()
        hanging = Probe(loop.create_future(), concurrent_spawns=1, slot_seconds=0.2)
        next_in_line = Probe(loop.create_future(), concurrent_spawns=1, slot_seconds=0.2)
        first = asyncio.create_task(spawn(hanging, start_timeout=5))
        await hanging.started.wait()
        second = asyncio.create_task(spawn(next_in_line, start_timeout=5))
        await asyncio.sleep(0.05)
        assert not next_in_line.started.is_set()
        await asyncio.wait_for(next_in_line.started.wait(), 1)  # admitted after 0.2 s
        assert not first.done()  # the slow start itself goes on
        for spawner, task in ((hanging, first), (next_in_line, second)):
            spawner.outcome.set_result(None)
            await task
        assert hanging._queue().starting == 0 and hanging._queue().waiting == 0

    run(scenario())


def test_the_spawn_pending_page_shows_the_place_in_line_as_it_moves():
    async def scenario():
        loop = asyncio.get_running_loop()
        spawners = [Probe(loop.create_future(), concurrent_spawns=1) for _ in range(3)]
        last = spawners[-1]
        events: list[str] = []

        async def watch():
            async for event in last.progress():  # opened before the student is in line
                events.append(event["message"])

        watcher = asyncio.create_task(watch())
        tasks = []
        for spawner in spawners:
            tasks.append(asyncio.create_task(spawn(spawner)))
            await asyncio.sleep(0.01)
        for spawner in spawners:
            await asyncio.wait_for(spawner.started.wait(), 1)
            spawner.outcome.set_result(None)  # a start without an address: nothing to wait for
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        await asyncio.wait_for(watcher, 1)
        places = [int(m) for m in re.findall(r"You are number (\d+) in line", " ".join(events))]
        assert places == [2, 1], events
        assert events[-2:] == ["Your turn: your server is starting.", "Spawning server..."]
        assert "1 server is starting (this machine starts 1 at a time)" in events[0]

    run(scenario())


def test_waiting_in_line_does_not_count_against_the_start_timeout():
    """Three students, one start at a time, each start 0.3 s, a start timeout of 0.5 s: the
    third waits about 0.6 s in line and still starts (the wait is before start())."""

    async def scenario():
        loop = asyncio.get_running_loop()
        spawners = [Probe(loop.create_future(), concurrent_spawns=1) for _ in range(3)]
        asked = loop.time()
        tasks = [asyncio.create_task(spawn(s, start_timeout=0.5)) for s in spawners]
        for spawner in spawners:
            await asyncio.wait_for(spawner.started.wait(), 2)
            await asyncio.sleep(0.3)
            spawner.outcome.set_result(None)
        waited = loop.time() - asked
        await asyncio.gather(*tasks)  # none timed out
        return waited

    assert run(scenario()) > 0.8
