"""Vault: round trip, key sources, key-file permissions, wrong key, rotation."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from sync_core.config import load_settings
from sync_core.crypto import (
    ENV_KEY,
    CryptoError,
    Vault,
    begin_key_rotation,
    finish_key_rotation,
    generate_key,
    key_file_path,
)
from sync_core.ebay.redact import redact

TOKEN = "v^1.1#i^1#r^1#f^0#I^3#p^3#t^CRYPTOREFRESH0123456789=="


@pytest.fixture
def settings(tmp_path):
    return load_settings({"BAYSYNC_HOME": str(tmp_path)})


def test_round_trip_with_generated_key_file(settings, tmp_path):
    v = Vault.from_settings(settings, env={})
    blob = v.encrypt(TOKEN)
    assert isinstance(blob, bytes) and TOKEN.encode() not in blob
    assert v.decrypt(blob) == TOKEN and v.decrypt(blob.decode()) == TOKEN
    assert v.encrypt(TOKEN) != blob  # random IV
    path = tmp_path / "secret.key"
    assert key_file_path(settings) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a second process reads the same key
    assert Vault.from_settings(settings, env={}).decrypt(blob) == TOKEN
    assert "unicode ✓" == v.decrypt(v.encrypt("unicode ✓"))
    key = path.read_text().strip()
    assert key not in repr(v) and redact(f"key={key}") == "key=***"


def test_configured_key_file_location(tmp_path):
    s = load_settings({"BAYSYNC_HOME": str(tmp_path), "BAYSYNC_SECRET_KEY_FILE": str(tmp_path / "sub" / "k")})
    Vault.from_settings(s, env={})
    assert (tmp_path / "sub" / "k").exists() and not (tmp_path / "secret.key").exists()


def test_env_key_wins(settings, tmp_path):
    key = generate_key()
    v = Vault.from_settings(settings, env={ENV_KEY: key})
    assert Fernet(key.encode()).decrypt(v.encrypt("x")) == b"x"
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(CryptoError, match="BAYSYNC_SECRET_KEY is not a valid key") as ei:
        Vault.from_settings(settings, env={ENV_KEY: "not-a-key"})
    assert "not-a-key" not in str(ei.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_readable_by_others_refused(settings, tmp_path, mode):
    path = tmp_path / "secret.key"
    path.write_text(generate_key() + "\n")
    os.chmod(path, mode)
    with pytest.raises(CryptoError, match="must not be accessible by group/others") as ei:
        Vault.from_settings(settings, env={})
    msg = str(ei.value)
    assert "\n" not in msg and f"chmod 600 {path}" in msg
    assert path.read_text().strip() in open(path).read()  # untouched


def test_corrupt_key_file(settings, tmp_path):
    path = tmp_path / "secret.key"
    path.write_text("garbage\n")
    os.chmod(path, 0o600)
    with pytest.raises(CryptoError, match="not a valid key"):
        Vault.from_settings(settings, env={})


def test_no_create(settings):
    with pytest.raises(CryptoError, match="no encryption key"):
        Vault.from_settings(settings, env={}, create=False)


def test_wrong_key_clear_error(settings, tmp_path):
    blob = Vault(generate_key()).encrypt(TOKEN)
    v = Vault.from_settings(settings, env={})
    before = (tmp_path / "secret.key").read_text()
    with pytest.raises(CryptoError) as ei:
        v.decrypt(blob)
    assert str(ei.value).startswith("cannot decrypt stored tokens: wrong BAYSYNC_SECRET_KEY or key file")
    assert (tmp_path / "secret.key").read_text() == before  # nothing overwritten
    with pytest.raises(CryptoError):
        v.decrypt(b"not a fernet token")
    with pytest.raises(CryptoError):
        v.reencrypt(blob)


def test_rotation_in_memory():
    old = Vault(generate_key())
    blobs = [old.encrypt(f"secret-{i}") for i in range(3)]
    new = old.rotate()
    assert new.key_count == 2
    rotated = new.reencrypt_all(blobs)
    assert [new.decrypt(b) for b in rotated] == ["secret-0", "secret-1", "secret-2"]
    assert all(new.is_current(b) for b in rotated) and not any(new.is_current(b) for b in blobs)
    only_new = new.primary_only()
    assert only_new.decrypt(rotated[0]) == "secret-0"
    with pytest.raises(CryptoError):
        only_new.decrypt(blobs[0])
    with pytest.raises(CryptoError):
        old.decrypt(rotated[0])


def test_rotation_with_key_file(settings, tmp_path):
    v1 = Vault.from_settings(settings, env={})
    rows = [v1.encrypt("tok-a"), v1.encrypt("tok-b")]
    v2 = begin_key_rotation(settings, env={})
    path = tmp_path / "secret.key"
    assert len(path.read_text().split()) == 2 and stat.S_IMODE(path.stat().st_mode) == 0o600
    # meanwhile any process reads both old and new rows
    mid = Vault.from_settings(settings, env={})
    assert mid.decrypt(rows[0]) == "tok-a"
    rows = [v2.reencrypt(r) for r in rows]
    finish_key_rotation(settings, env={})
    assert len(path.read_text().split()) == 1 and stat.S_IMODE(path.stat().st_mode) == 0o600
    v3 = Vault.from_settings(settings, env={})
    assert [v3.decrypt(r) for r in rows] == ["tok-a", "tok-b"]
    with pytest.raises(CryptoError):
        v3.decrypt(v1.encrypt("old"))
    with pytest.raises(CryptoError, match="BAYSYNC_SECRET_KEY is set"):
        begin_key_rotation(settings, env={ENV_KEY: generate_key()})


def test_env_multiple_keys_for_rotation(settings):
    old, new = generate_key(), generate_key()
    blob = Vault(old).encrypt("x")
    v = Vault.from_settings(settings, env={ENV_KEY: f"{new},{old}"})
    assert v.decrypt(blob) == "x" and Vault(new).decrypt(v.encrypt("y")) == "y"
