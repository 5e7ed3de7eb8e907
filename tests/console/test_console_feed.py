"""EventFeed: notifies are coalesced, events are read by id (never lost, never duplicated), a
reconnect catches up, control notifies ask for a refresh."""

from __future__ import annotations

import asyncio

from sync_core import db
from sync_core.events import emit
from tests.console.conftest import sql
from console.feed import EventFeed


class FakeListener:
    """Stands in for sync_core.events.listen: yields whatever the test puts in the queue."""

    def __init__(self):
        self.q: asyncio.Queue = asyncio.Queue()

    async def __call__(self, conninfo, channels, timeout=5.0):
        while True:
            yield await self.q.get()


async def test_feed_coalesces_and_catches_up(settings, db_url):
    engine = db.make_async_engine(settings, "console", db_url)
    got: list[dict] = []
    controls: list[int] = []
    listener = FakeListener()
    feed = EventFeed(engine, {}, on_events=got.extend, on_control=lambda: controls.append(1), start_id=0,
                     min_interval_s=0.2, poll_s=30, listener=listener)
    task = asyncio.create_task(feed.run())
    try:
        async with engine.begin() as conn:
            for i in range(50):
                await emit(conn, "note", f"m{i}")
        for i in range(50):  # a burst of notifies while the reader is busy / sleeping
            listener.q.put_nowait(str(i + 1))
        await asyncio.sleep(0.6)
        assert [e["message"] for e in got] == [f"m{i}" for i in range(50)]
        assert feed.reads <= 4  # 50 notifies, a handful of reads
        # "disconnected": rows arrive without any notify; the reconnect (None) makes the feed catch up
        async with engine.begin() as conn:
            await emit(conn, "note", "while away", level="warning")
        listener.q.put_nowait(None)
        await asyncio.sleep(0.4)
        assert got[-1]["message"] == "while away" and len(got) == 51
        assert len({e["id"] for e in got}) == 51
        listener.q.put_nowait("stop")  # a control-channel payload
        await asyncio.sleep(0.1)
        assert controls == [1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()


async def test_feed_reports_outage_and_recovers(settings, db_url, tmp_path):
    bad = db.make_async_engine(settings, "console", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    status: list = []
    feed = EventFeed(bad, {}, on_events=lambda rows: None, on_status=status.append, start_id=0,
                     listener=FakeListener())
    assert await feed.catch_up() is False
    assert status and status[0]
    feed.engine = db.make_async_engine(settings, "console", db_url)
    assert await feed.catch_up() is True
    assert status[-1] is None
    await bad.dispose()
    await feed.engine.dispose()
