"""eBay Digital Signatures end to end with the real `baysync` and the simulator in its own process
(FACTS.md §12; eBay's guide "Digital Signatures for APIs"): an EU/UK seller's transactions run fails with
one line of advice and marks the account; after `baysync keys signing create` (Key Management API
createSigningKey, application token) the next run succeeds with the simulator's truth; the private key is
stored encrypted and reaches no event, run row or output.  Plus the CLI's bad-input paths."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from sync_core.crypto import Vault
from tests.support.env import q, test_settings
from tests.support.simproc import baysync_env, mint, sim_process, truth

NOW = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
SELLERS = [dict(name="alice", orders=20, transactions=150, payouts=4, disputes=1, conversations=1,
                inventory_items=5, days=60, signing_required=True)]


def bs(env, *args, input=None, timeout=120):
    p = subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True,
                       input=input, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_eu_seller_needs_a_signing_key_then_syncs(cli_env, db_url, tmp_path):
    with sim_process(SELLERS, NOW) as base:
        env = baysync_env(cli_env, base)
        rc, out, err = bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(base, "alice") + "\n")
        assert rc == 0, err
        assert q(db_url, "select signing_required from accounts") == [(False,)]  # not known to be EU yet

        rc, out, err = bs(env, "sync", "-a", "alice", "-s", "transactions")
        assert rc != 0 and "Traceback" not in err
        line = [ln for ln in (out + err).splitlines() if "baysync keys signing create" in ln]
        assert line and "215001" in line[0] and "EU/UK" in line[0], (out, err)
        assert q(db_url, "select signing_required from accounts") == [(True,)]
        assert q(db_url, "select status from sync_runs") == [("failed",)]
        rc, out, err = bs(env, "doctor")
        assert "alice: EU/UK seller without an eBay signing key (baysync keys signing create)" in out + err
        assert "baysync keys signing create" in q(db_url, "select error from sync_runs")[0][0]

        rc, out, err = bs(env, "keys", "signing", "create")
        assert rc == 0 and "signing key" in out, err
        rc, out2, err2 = bs(env, "sync", "-a", "alice", "-s", "transactions")
        assert rc == 0 and "run succeeded" in out2, err2

        stored = {r[0] for r in q(db_url, "select transaction_id from transactions")}
        want = {t["transactionId"] for t in truth(SELLERS, NOW, "alice", "transactions")}
        assert stored == want and want
        rc, out3, _ = bs(env, "accounts", "list")
        assert "EU/UK" in out3
        # doctor --live signs the EU/UK seller's Finances reads too (the simulator verifies the signature)
        rc, out4, err4 = bs(env, "doctor", "--live")
        for s in ("transactions", "payouts"):
            assert any(ln.startswith("OK") and f"alice/{s}" in ln for ln in out4.splitlines()), (out4, err4)

    # the private key: stored encrypted only, nowhere else
    (ct, jwe, source), = q(db_url, "select private_key_ct, jwe, source from signing_keys")
    assert source == "created"
    private = Vault.from_settings(test_settings(tmp_path / "home", db_url)).decrypt(ct)
    assert len(private) > 40 and private.encode() not in bytes(ct)
    sinks = " ".join(str(r) for sql in ("select message, data::text from run_events", "select * from sync_runs",
                                        "select * from sync_state", "select * from accounts")
                     for r in q(db_url, sql)) + out + err + out2 + err2 + out3
    assert private not in sinks and private[:40] not in sinks


def test_malformed_key_file_is_one_line_exit_2_nothing_stored(cli_env, db_url, tmp_path):
    # more malformed shapes: tests/ebay/test_signing.py::test_malformed_key_files_are_one_line_errors
    for content in ('{"privateKey": "AAAA", "jwe": "a.b.c.d.e"}',
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None):
        f = tmp_path / "key.json"
        if content is None:
            f.unlink()
        else:
            f.write_text(content)
        rc, out, err = bs(cli_env, "keys", "signing", "import", "--file", str(f))
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert str(f) in err and "AAAA" not in err
    assert q(db_url, "select count(*) from signing_keys") == [(0,)]


def test_import_a_pem_and_jwe_file_and_region_flags(cli_env, db_url, tmp_path):
    from tests.ebay.test_signing import ED25519_JWE, ED25519_PRIVATE

    f = tmp_path / "key.pem"
    f.write_text(ED25519_PRIVATE + "\n" + ED25519_JWE + "\n")
    rc, out, err = bs(cli_env, "keys", "signing", "import", "--file", str(f))
    assert rc == 0 and "ED25519" in out, err
    assert q(db_url, "select cipher, jwe, source from signing_keys") == [("ED25519", ED25519_JWE, "imported")]
    assert "MC4CAQ" not in out + err
    events = str(q(db_url, "select message, data::text from run_events"))
    assert "signing_key_imported" in events and "MC4CAQ" not in events
    assert bs(cli_env, "accounts", "add", "bob", "--region", "UK")[0] == 0
    assert bs(cli_env, "accounts", "add", "carol", "--eu")[0] == 0
    assert bs(cli_env, "accounts", "add", "dave", "--region", "other")[0] == 0
    rc, out, err = bs(cli_env, "accounts", "add", "erin", "--region", "Mars")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert q(db_url, "select name, signing_required from accounts order by name") == [
        ("bob", True), ("carol", True), ("dave", False)]
