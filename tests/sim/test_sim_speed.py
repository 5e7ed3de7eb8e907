"""Accelerated arrivals (SimConfig.speed, `baysync demo --speed`): the clock stays real, the seeded future
comes `speed` times sooner, and nothing served is ever dated after the simulator's now.

Not an eBay behaviour: a simulator knob for demos (docs/simulator.md "Accelerated arrivals"); the served
records keep eBay's shapes (tests/ebay_specs/*), only the instants move."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sync_core.sim import SellerSpec, SimConfig, Simulator
from sync_core.sim.util import dt_to_ms, parse_ts

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SPEED = 600.0
SPEC = SellerSpec("s", orders=1200, transactions=2400, payouts=40, disputes=120, conversations=150,
                  inventory_items=30, days=60, future_days=30)
DATE_OF = {"orders": "creationDate", "transactions": "transactionDate", "disputes": "openDate",
           "conversations": "createdDate"}


def sim(speed: float) -> Simulator:
    return Simulator(SimConfig(seed=3, sellers=[SPEC], now=T0, speed=speed))


def ids(s: Simulator, stream: str) -> set[str]:
    key = {"orders": "orderId", "transactions": "transactionId", "payouts": "payoutId",
           "disputes": "paymentDisputeId", "conversations": "conversationId"}[stream]
    kw = {"detail": False} if stream == "disputes" else {}
    return {r[key] for r in s.truth("s", stream, **kw)}


@pytest.mark.parametrize("stream", ["orders", "transactions", "payouts", "disputes", "conversations"])
def test_speed_n_after_t_seconds_shows_what_speed_1_shows_after_n_t(stream):
    fast, slow = sim(SPEED), sim(1)
    assert ids(fast, stream) == ids(slow, stream)  # the history is the seeded one
    before = len(ids(slow, stream))
    fast.advance(3600)  # one hour at speed 600 ...
    slow.advance(3600 * SPEED)  # ... is 25 days of the seeded rate
    new = ids(fast, stream)
    # the same records, give or take the few that arrive within a millisecond of the window's end
    assert abs(len(new) - len(ids(slow, stream))) <= 2
    assert len(new) - before >= 10, f"{stream}: only {len(new) - before} new records"


def test_served_instants_are_never_after_now_and_new_records_arrive_in_real_time():
    fast = sim(SPEED)
    now = T0
    for step in range(6):
        fast.advance(600)
        now += timedelta(seconds=600)
        for stream, field in DATE_OF.items():
            for r in fast.truth("s", stream):
                v = r.get(field) or (r.get("latestMessage") or {}).get("createdDate")
                if v:
                    assert parse_ts(v) <= dt_to_ms(now), (stream, r)
        for r in fast.truth("s", "orders"):
            assert parse_ts(r["lastModifiedDate"]) <= dt_to_ms(now)
    # lifecycle follows the speed too: orders created after T0 are already shipped an hour later
    new = [r for r in fast.truth("s", "orders") if parse_ts(r["creationDate"]) > dt_to_ms(T0)]
    assert new and sum(r["orderFulfillmentStatus"] == "FULFILLED" for r in new) >= len(new) // 2


def test_records_that_exist_at_the_start_keep_their_seeded_life():
    fast, slow = sim(SPEED), sim(1)
    history = ids(slow, "orders")
    fast.advance(3600)
    slow.advance(3600)
    now_fast = {r["orderId"]: r for r in fast.truth("s", "orders") if r["orderId"] in history}
    now_slow = {r["orderId"]: r for r in slow.truth("s", "orders") if r["orderId"] in history}
    assert now_fast == now_slow  # same status and lastModifiedDate: only new orders live faster
    assert len(ids(fast, "orders")) > len(now_fast)


def test_speed_must_be_positive():
    with pytest.raises(ValueError, match="speed"):
        sim(0)
