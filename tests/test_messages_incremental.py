"""Messages fetch only what changed where the API allows it: getConversations `start_time` ("only messages
sent after this time will be retrieved", FROM_MEMBERS only -- commerce_message_v1_oas3.json) from the cursor
minus the look-back; FROM_EBAY has no time filter and is listed in full."""

from datetime import timedelta

import pytest

from tests.support.simenv import make_env, make_sim
from tests.test_sync_e2e import NOW, run_pair, seller


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=10, conversations=160, days=60), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="60")
    await e.add_account("alice")
    yield e
    await e.engine.dispose()


def _calls(env):
    return dict(env.sim.stats["by_seller"].get("alice", {}))


async def _assert_stored_equals_truth(env):
    truth = env.sim.truth("alice", "conversations")
    got = {r[0]: (r[1], r[2]) for r in await env.rows(
        "select conversation_id, raw->'latestMessage'->>'messageId', unread_count from conversations")}
    assert got == {c["conversationId"]: (c["latestMessage"]["messageId"], c["unreadCount"]) for c in truth}
    for c in truth:
        want = {m["messageId"] for m in env.sim.truth("alice", "messages", conversation_id=c["conversationId"])}
        have = {r[0] for r in await env.rows(
            "select message_id from conversation_messages where conversation_id = :c", c=c["conversationId"])}
        assert have == want, c["conversationId"]


async def test_second_run_fetches_only_the_changed_conversations(env):
    assert (await run_pair(env, "alice", "messages"))[0] == "succeeded"
    await _assert_stored_equals_truth(env)
    truth = env.sim.truth("alice", "conversations")
    n_members = sum(1 for c in truth if c["conversationType"] == "FROM_MEMBERS")
    n_ebay = len(truth) - n_members
    assert n_members > 50  # a full FROM_MEMBERS listing takes several pages
    first = _calls(env)
    assert first["getConversation"] == len(truth)

    env.sim.counters.reset()
    env.sim.advance(60)
    touched = env.sim.touch("alice", "conversations", n=2)  # a new message in each
    env.sim.advance(1)
    status, ctx = await run_pair(env, "alice", "messages")
    assert status == "succeeded"
    second = _calls(env)
    assert second["getConversation"] == len(touched)  # only the changed conversations' messages
    # FROM_MEMBERS listed from the cursor minus the look-back (at least the last 7 days): one page here, not
    # ceil(n_members / 50); FROM_EBAY (no time filter in the spec) in full
    recent = sum(1 for c in env.sim.truth("alice", "conversations") if c["conversationType"] == "FROM_MEMBERS"
                 and c["latestMessage"]["createdDate"] >= (NOW - timedelta(days=7, hours=1)).isoformat()[:19])
    assert recent <= 50
    assert second["getConversations"] == 1 + max(1, -(-n_ebay // 50))
    assert second["getConversations"] < first["getConversations"]
    assert ctx.totals.updated == len(touched)
    await _assert_stored_equals_truth(env)


async def test_a_full_run_lists_every_conversation_again(env):
    assert (await run_pair(env, "alice", "messages"))[0] == "succeeded"
    full_calls = _calls(env)["getConversations"]
    env.sim.counters.reset()
    assert (await run_pair(env, "alice", "messages", kind="full"))[0] == "succeeded"
    assert _calls(env)["getConversations"] == full_calls and "getConversation" not in _calls(env)
    await _assert_stored_equals_truth(env)
