"""The stored eBay signing key (FACTS.md §12): encrypted at rest in signing_keys, the newest in use, carried
over by `keys rotate`, and the runner marks an account EU/UK when eBay asks for a signature."""

import pytest
import sqlalchemy as sa

from sync_core import accounts, db
from sync_core.crypto import CryptoError, Vault, generate_key
from sync_core.ebay import signing
from tests.ebay.test_signing import (ED25519_JWE, ED25519_PRIVATE, ED25519_PUBLIC, RSA_JWE, RSA_PRIVATE,
                                     SAMPLE_BODY, SAMPLE_CREATED, SAMPLE_SIGNATURE, SAMPLE_URL)
from tests.support.env import test_settings


async def test_signing_key_encrypted_newest_in_use_and_rotated(tmp_path, db_url):
    s = test_settings(tmp_path, db_url)
    engine = db.make_async_engine(s, "test")
    old = Vault([generate_key()])
    try:
        async with engine.begin() as conn:
            assert await accounts.load_signer(conn, old) is None
            await accounts.store_signing_key(conn, old, {"private_key": RSA_PRIVATE, "jwe": RSA_JWE}, "imported")
            await accounts.store_signing_key(conn, old, {"private_key": ED25519_PRIVATE, "jwe": ED25519_JWE,
                                                         "key_id": "k2", "public_key": ED25519_PUBLIC}, "created")
            rows = (await conn.execute(sa.text("select cipher, private_key_ct from signing_keys order by id"))).all()
        assert [r.cipher for r in rows] == ["RSA", "ED25519"]
        assert all(b"PRIVATE" not in bytes(r.private_key_ct) and b"MC4CAQ" not in bytes(r.private_key_ct) for r in rows)
        new = old.rotate()
        await accounts.rotate_keys(engine, old, new)
        async with engine.connect() as conn:
            signer = await accounts.load_signer(conn, new.primary_only())  # the old key is no longer needed
            assert signer.key_id == "k2" and signer.cipher == "ED25519"
            h = signer.headers("POST", SAMPLE_URL, SAMPLE_BODY, created=SAMPLE_CREATED)
            assert h["Signature"] == SAMPLE_SIGNATURE
            with pytest.raises(CryptoError) as ei:
                await accounts.load_signer(conn, old.primary_only())  # only the old key: re-encrypted, so no
            assert "MC4CAQ" not in str(ei.value)
    finally:
        await engine.dispose()


async def test_mark_signing_required_once(tmp_path, db_url):
    s = test_settings(tmp_path, db_url)
    engine = db.make_async_engine(s, "test")
    try:
        async with engine.begin() as conn:
            aid = await accounts.add_account(conn, s, "eu1")
            assert await accounts.mark_signing_required(conn, aid) is True
            assert await accounts.mark_signing_required(conn, aid) is False
            await accounts.add_account(conn, s, "eu1")  # re-adding without a flag keeps it
            assert (await conn.execute(sa.text("select signing_required from accounts where id = :a"),
                                       dict(a=aid))).scalar() is True
            assert signing.needs_signature("finances") and not signing.needs_signature("fulfillment")
    finally:
        await engine.dispose()
