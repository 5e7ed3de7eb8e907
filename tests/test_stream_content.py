"""Every stream's stored content equals the simulator's truth: keys AND the mapped columns (amounts as
numeric + currency, dates, statuses, child rows), across later runs that see changes, removals and
returns. Expected values are derived from ``sim.truth`` with eBay's field names (tests/ebay_specs/)."""

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from sync_core import coordination as co
from sync_core.streams.disputes import OPEN_STATES
from sync_core.worker import Clients
from tests.support.simenv import make_env, make_sim
from tests.test_sync_e2e import NOW, _pair_ctx, seller

DAY = 86400


def _ts(v):
    return datetime.fromisoformat(v.replace("Z", "+00:00")) if v is not None else None


def _amount(m):
    """eBay's Amount {value, currency} as the (numeric, currency) pair the columns hold."""
    return (Decimal(m["value"]), m["currency"]) if m else (None, None)


async def run(env, stream, account="alice", during=None):
    """One claimed run of (account, stream) on the simulator's clock (ctx.now = sim.now(): the plan's
    windows end at the simulator's "now", which later tests move forward). ``during(ctx)`` runs alongside."""
    clients = Clients(env.settings, env.engine, transport=env.transport)
    try:
        ctx = await _pair_ctx(env, account, stream, clients)
        ctx.now = env.sim.now()
        side = asyncio.create_task(during(ctx)) if during else None
        status = await ctx.execute()
        if side:
            await asyncio.wait_for(side, 60)
        return status, ctx
    finally:
        await clients.aclose()


async def table(env, sql):
    """{key: row} of a query; the key is the first selected column."""
    return {r[0]: tuple(r[1:]) for r in await env.rows(sql)}


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=120, transactions=100, payouts=20, disputes=30, conversations=15,
                          inventory_items=60), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="200")  # all of the seller's 150 days
    await e.add_account("alice")
    yield e
    await e.engine.dispose()


# ---------------------------------------------------------------- payouts


async def _assert_payouts(env):
    got = await table(env, "select payout_id, payout_date, payout_status, amount_value, amount_currency, "
                           "transaction_count from payouts")
    # Payout: payoutId, payoutDate, payoutStatus, amount{value,currency}, transactionCount
    want = {p["payoutId"]: (_ts(p["payoutDate"]), p["payoutStatus"], *_amount(p["amount"]), p["transactionCount"])
            for p in env.sim.truth("alice", "payouts")}
    assert got == want
    assert all(isinstance(v[2], Decimal) for v in got.values())
    return want


async def test_payouts_match_truth_and_later_status_changes(env):
    assert (await run(env, "payouts"))[0] == "succeeded"
    first = await _assert_payouts(env)
    for _ in range(40):  # on to the simulator's next payout, while it is still INITIATED (36 h)
        env.sim.advance(DAY / 2)
        if any(p["payoutStatus"] == "INITIATED" for p in env.sim.truth("alice", "payouts")):
            break
    assert (await run(env, "payouts"))[0] == "succeeded"
    second = await _assert_payouts(env)
    initiated = {k for k, v in second.items() if v[1] == "INITIATED"}
    assert initiated and len(second) > len(first)
    env.sim.advance(3 * DAY)  # INITIATED -> SUCCEEDED: picked up by the trailing re-scan
    assert (await run(env, "payouts"))[0] == "succeeded"
    third = await _assert_payouts(env)
    assert {third[k][1] for k in initiated} == {"SUCCEEDED"}


# ---------------------------------------------------------------- disputes


def _dispute_row(d):
    # DisputeSummaryResponse / PaymentDispute: paymentDisputeId, orderId, buyerUsername, openDate,
    # closedDate, respondByDate, paymentDisputeStatus, reason, amount{value,currency}
    return (d["orderId"], d["buyerUsername"], _ts(d["openDate"]), _ts(d.get("closedDate")),
            _ts(d.get("respondByDate")), d["paymentDisputeStatus"], d["reason"], *_amount(d["amount"]))


DISPUTE_COLS = ("payment_dispute_id, order_id, buyer, open_date, closed_date, respond_by_date, status, reason, "
                "amount_value, amount_currency")


async def _assert_disputes(env):
    got = await table(env, f"select {DISPUTE_COLS} from payment_disputes")
    want = {d["paymentDisputeId"]: _dispute_row(d) for d in env.sim.truth("alice", "disputes")}
    assert got == want
    return got


def _detail_calls(env):
    return env.sim.stats["by_seller"].get("alice", {}).get("getPaymentDispute", 0)


async def _open_before(env, since):
    return set(r[0] for r in await env.rows(
        "select payment_dispute_id from payment_disputes where closed_date is null and status = any(:s) "
        "and open_date < :since", s=list(OPEN_STATES), since=since))


async def test_disputes_match_truth_and_open_ones_are_refetched_until_closed(env):
    assert (await run(env, "disputes"))[0] == "succeeded"
    first = await _assert_disputes(env)
    assert _detail_calls(env) == 0  # nothing was opened before the first plan
    for days in (20, 60):
        env.sim.advance(days * DAY)
        env.sim.counters.reset()
        open_ids = set(r[0] for r in await env.rows(
            "select payment_dispute_id from payment_disputes where status = any(:s)", s=list(OPEN_STATES)))
        status, ctx = await run(env, "disputes")
        assert status == "succeeded"
        stored = await _assert_disputes(env)
        # exactly the disputes still open and opened before this run's windows were re-read by id ...
        refetched = {k for k in open_ids if first[k][2] < ctx.plan_start}
        assert refetched and _detail_calls(env) == len(refetched)
        # ... and stored with the detail body (PaymentDispute.revision is only in getPaymentDispute)
        revs = dict(await env.rows("select payment_dispute_id, raw ? 'revision' from payment_disputes"))
        assert all(revs[k] for k in refetched)
        closed_since = {k for k in refetched if stored[k][5] == "CLOSED"}
        assert closed_since and all(stored[k][3] is not None for k in closed_since)
        first = stored
    # closed disputes are not re-read: only the still-open ones are
    env.sim.counters.reset()
    still_open = {k for k, v in first.items() if v[5] in OPEN_STATES}
    status, ctx = await run(env, "disputes")
    assert status == "succeeded" and _detail_calls(env) == len({k for k in still_open if first[k][2] < ctx.plan_start})


async def test_stop_during_the_open_dispute_refetch_cancels_then_a_later_run_completes(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=400, transactions=10, payouts=2, disputes=300, conversations=1,
                          inventory_items=1), now=NOW)
    # heartbeat 1 s: a STOP is also seen between two detail calls, not only at a chunk's write
    env = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="200", BAYSYNC_HEARTBEAT_S="1")
    try:
        await env.add_account("alice")
        assert (await run(env, "disputes"))[0] == "succeeded"
        env.sim.advance(DAY)
        # the next plan starts lookback_s before the first run's cursor (NOW): open disputes opened before it
        to_refetch = await _open_before(env, NOW - timedelta(seconds=env.settings.lookback_s))
        assert len(to_refetch) > 50  # more than one chunk of 50
        env.sim.counters.reset()
        # each detail call takes a while, so the re-fetch is still going when STOP arrives
        env.sim.set_faults(latency_ms=50.0, only_paths=("/sell/fulfillment/v1/payment_dispute/",))

        async def stop_once_refetching(ctx):
            deadline = asyncio.get_running_loop().time() + 60
            while _detail_calls(env) == 0:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            async with env.engine.begin() as conn:
                await co.request_stop(conn, ctx.account_id, "disputes")

        status, ctx = await run(env, "disputes", during=stop_once_refetching)
        assert status == "cancelled"
        assert await env.scalar("select status from sync_runs where id = :r", r=ctx.run_id) == "cancelled"
        assert 0 < _detail_calls(env) < len(to_refetch)  # it stopped part-way
        env.sim.set_faults(latency_ms=0.0)
        status, _ = await run(env, "disputes")
        assert status == "succeeded"
        await _assert_disputes(env)
    finally:
        await env.engine.dispose()


# ---------------------------------------------------------------- messages


async def _assert_messages(env):
    got = await table(env, "select conversation_id, conversation_type, conversation_status, title, created_date, "
                           "reference_id, reference_type, unread_count, latest_message_at from conversations")
    # Conversation: conversationId, conversationType, conversationStatus, conversationTitle, createdDate,
    # referenceId, referenceType, unreadCount, latestMessage.createdDate
    convs = env.sim.truth("alice", "conversations")
    want = {c["conversationId"]: (c["conversationType"], c["conversationStatus"], c["conversationTitle"],
                                  _ts(c["createdDate"]), c.get("referenceId"), c.get("referenceType"),
                                  c["unreadCount"], _ts(c["latestMessage"]["createdDate"])) for c in convs}
    assert got == want
    got_m = {(r[0], r[1]): tuple(r[2:]) for r in await env.rows(
        "select conversation_id, message_id, created_date, sender, recipient, subject, read_status, body "
        "from conversation_messages")}
    # ConversationMessage: messageId, createdDate, senderUsername, recipientUsername, subject, readStatus,
    # messageBody
    want_m = {(c["conversationId"], m["messageId"]): (_ts(m["createdDate"]), m["senderUsername"],
                                                      m["recipientUsername"], m["subject"], m["readStatus"],
                                                      m["messageBody"])
              for c in convs for m in env.sim.truth("alice", "messages", conversation_id=c["conversationId"])}
    assert got_m == want_m
    return want, want_m


async def test_conversations_and_their_messages_match_truth(env):
    assert (await run(env, "messages"))[0] == "succeeded"
    convs, msgs = await _assert_messages(env)
    assert {c[0] for c in convs.values()} == {"FROM_MEMBERS", "FROM_EBAY"}
    touched = env.sim.touch("alice", "conversations", n=3)  # a new unread message in each
    env.sim.advance(3600)
    assert (await run(env, "messages"))[0] == "succeeded"
    convs2, msgs2 = await _assert_messages(env)
    assert len(msgs2) == len(msgs) + 3 and all(convs2[c][6] >= 1 for c in touched)
    env.sim.advance(2 * DAY)  # those messages are read now (unread for their first day)
    assert (await run(env, "messages"))[0] == "succeeded"
    convs3, msgs3 = await _assert_messages(env)
    assert all(convs3[c][6] == 0 for c in touched)


# ---------------------------------------------------------------- inventory items, offers, the report


def _sku_with_published_offer(env):
    offers = env.sim.truth("alice", "offers")
    return next(o["sku"] for o in offers if o["status"] == "PUBLISHED")


async def _assert_items(env, removed=()):
    got = await table(env, "select sku, title, condition, quantity, locale, removed_at is not null "
                           "from inventory_items")
    # InventoryItemWithSkuLocaleGroupid: sku, product.title, condition,
    # availability.shipToLocationAvailability.quantity, locale
    want = {i["sku"]: (i["product"]["title"], i["condition"],
                       i["availability"]["shipToLocationAvailability"]["quantity"], i["locale"], False)
            for i in env.sim.truth("alice", "inventory_items")}
    assert {k: v for k, v in got.items() if k not in removed} == want
    assert all(got[k][4] for k in removed)  # kept, with removed_at set
    return got


async def test_inventory_items_match_truth_removed_and_back(env):
    assert (await run(env, "inventory_items"))[0] == "succeeded"
    first = await _assert_items(env)
    gone = sorted(first)[3]
    env.sim.remove_inventory_item("alice", gone)
    touched = env.sim.touch("alice", "inventory_items", n=3)  # quantities change
    assert (await run(env, "inventory_items"))[0] == "succeeded"
    second = await _assert_items(env, removed={gone})
    assert second[gone][:4] == first[gone][:4]
    assert any(second[s][2] != first[s][2] for s in touched if s != gone)
    env.sim.remove_inventory_item("alice", gone, removed=False)  # listed again, unchanged
    assert (await run(env, "inventory_items"))[0] == "succeeded"
    third = await _assert_items(env)
    assert not third[gone][4]


async def _assert_offers(env, ended=()):
    got = await table(env, "select offer_id, sku, marketplace_id, format, status, listing_id, listing_status, "
                           "price_value, price_currency, available_quantity, ended_at is not null from offers")
    # EbayOfferDetailsWithAll: offerId, sku, marketplaceId, format, status, listing.listingId,
    # listing.listingStatus, pricingSummary.price{value,currency}, availableQuantity
    want = {o["offerId"]: (o["sku"], o["marketplaceId"], o["format"], o["status"],
                           (o.get("listing") or {}).get("listingId"), (o.get("listing") or {}).get("listingStatus"),
                           *_amount(o["pricingSummary"].get("price")), o["availableQuantity"], False)
            for o in env.sim.truth("alice", "offers")}
    assert {k: v for k, v in got.items() if got[k][0] not in ended} == want
    assert all(v[9] for v in got.values() if v[0] in ended)
    # PricingSummary.price: "For published offers, this container will always be returned" (auctions too)
    assert all(v[6] is not None for v in got.values() if v[3] == "PUBLISHED")
    return got


async def test_offers_match_truth_ended_and_back(env):
    assert (await run(env, "offers"))[0] == "succeeded"
    first = await _assert_offers(env)
    assert {v[2] for v in first.values()} == {"FIXED_PRICE", "AUCTION"}
    assert "UNPUBLISHED" in {v[3] for v in first.values()}
    gone = _sku_with_published_offer(env)
    env.sim.remove_inventory_item("alice", gone)
    touched = env.sim.touch("alice", "offers", n=3)
    assert (await run(env, "offers"))[0] == "succeeded"
    second = await _assert_offers(env, ended={gone})
    assert any(second[o][8] != first[o][8] for o in touched if second[o][0] != gone)
    env.sim.remove_inventory_item("alice", gone, removed=False)
    assert (await run(env, "offers"))[0] == "succeeded"
    third = await _assert_offers(env)
    assert not any(v[9] for v in third.values())


async def _assert_report(env, inactive=()):
    got = await table(env, "select listing_key, item_id, sku, price_value, price_currency, quantity, "
                           "inactive_since is not null from active_inventory")
    # report rows: ItemID, SKU (absent for listings without one), Price + Price@currencyID, Quantity
    want = {f"{r['ItemID']}/{r.get('SKU', '')}": (r["ItemID"], r.get("SKU"), Decimal(r["Price"]),
                                                  r["Price@currencyID"], int(r["Quantity"]), False)
            for r in env.sim.truth("alice", "active_inventory")}
    assert {k: v for k, v in got.items() if k not in inactive} == want
    assert all(got[k][5] for k in inactive)
    return got


async def test_active_inventory_report_matches_truth_inactive_and_back(env):
    env.sim.set_faults(report_delay_s=0.0)  # the report task completes at once (simulator time is frozen)
    assert (await run(env, "active_inventory"))[0] == "succeeded"
    first = await _assert_report(env)
    assert any(v[1] is None for v in first.values())  # legacy listings without a SKU are kept
    gone = _sku_with_published_offer(env)
    env.sim.remove_inventory_item("alice", gone)
    assert (await run(env, "active_inventory"))[0] == "succeeded"
    gone_keys = {k for k, v in first.items() if v[1] == gone}
    assert gone_keys
    await _assert_report(env, inactive=gone_keys)
    env.sim.remove_inventory_item("alice", gone, removed=False)
    assert (await run(env, "active_inventory"))[0] == "succeeded"
    third = await _assert_report(env)
    assert not any(v[5] for v in third.values())


# ---------------------------------------------------------------- orders and finances transactions


async def test_orders_and_line_items_match_truth(env):
    assert (await run(env, "orders"))[0] == "succeeded"
    got = await table(env, "select order_id, creation_date, last_modified_date, fulfillment_status, payment_status, "
                           "buyer, total_value, total_currency from orders")
    orders = env.sim.truth("alice", "orders")
    # Order: orderId, creationDate, lastModifiedDate, orderFulfillmentStatus, orderPaymentStatus,
    # buyer.username, pricingSummary.total{value,currency}
    assert got == {o["orderId"]: (_ts(o["creationDate"]), _ts(o["lastModifiedDate"]), o["orderFulfillmentStatus"],
                                  o["orderPaymentStatus"], o["buyer"]["username"],
                                  *_amount(o["pricingSummary"]["total"])) for o in orders}
    got_li = {(r[0], r[1]): tuple(r[2:]) for r in await env.rows(
        "select order_id, line_item_id, sku, listing_id, title, quantity, total_value, total_currency "
        "from order_line_items")}
    # LineItem: lineItemId, sku, legacyItemId, title, quantity, total{value,currency}
    assert got_li == {(o["orderId"], li["lineItemId"]): (li.get("sku"), li["legacyItemId"], li["title"],
                                                         li["quantity"], *_amount(li["total"]))
                      for o in orders for li in o["lineItems"]}
    # each line item's JSON as eBay sent it: the view over orders.raw (0016_line_items_raw)
    got_raw = {(r[0], r[1]): r[2] for r in await env.rows(
        "select order_id, line_item_id, raw from order_line_items_raw")}
    assert got_raw == {(o["orderId"], li["lineItemId"]): li for o in orders for li in o["lineItems"]}
    assert len(got_raw) == len(got_li)


async def _assert_transactions(env):
    got = {(r[0], r[1]): tuple(r[2:]) for r in await env.rows(
        "select transaction_id, transaction_type, transaction_date, transaction_status, order_id, payout_id, "
        "amount_value, amount_currency, booking_entry, buyer from transactions")}
    # Transaction: transactionId, transactionType, transactionDate, transactionStatus, orderId, payoutId,
    # amount{value,currency}, bookingEntry, buyer.username
    want = {(t["transactionId"], t["transactionType"]): (
        _ts(t["transactionDate"]), t["transactionStatus"], t.get("orderId"), t.get("payoutId"), *_amount(t["amount"]),
        t["bookingEntry"], (t.get("buyer") or {}).get("username")) for t in env.sim.truth("alice", "transactions")}
    assert got == want
    return got


async def test_transactions_match_truth_and_later_status_changes(env):
    """Held funds are paid out weeks after the transactionDate (past the 14-day re-scan): the payout's
    transactions are re-read by payoutId, so status and payoutId are current."""
    assert (await run(env, "payouts"))[0] == "succeeded"
    assert (await run(env, "transactions"))[0] == "succeeded"
    first = await _assert_transactions(env)
    for _ in range(30):  # until a stored transaction's status moved on (funds available, then paid out)
        env.sim.advance(DAY)
        now = {(t["transactionId"], t["transactionType"]): t["transactionStatus"]
               for t in env.sim.truth("alice", "transactions")}
        if any(now[k] != v[1] for k, v in first.items()):
            break
    assert (await run(env, "payouts"))[0] == "succeeded"
    env.sim.counters.reset()
    status, ctx = await run(env, "transactions")
    assert status == "succeeded"
    second = await _assert_transactions(env)
    changed = {k for k in first if second[k][1] != first[k][1]}
    assert changed and any(second[k][0] < ctx.plan_start for k in changed)  # older than the re-scan
