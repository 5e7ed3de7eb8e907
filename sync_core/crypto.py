"""Encryption at rest for OAuth tokens and the eBay client secret.

Algorithm: **Fernet** (``cryptography.fernet``): AES-128-CBC + HMAC-SHA256 (encrypt-then-MAC), random
IV per message, versioned token format, authenticated -- tampering or a wrong key fails loudly.  Chosen
over raw AES-GCM because it needs no nonce bookkeeping of ours, its keys are printable (url-safe
base64, easy to pass in ``BAYSYNC_SECRET_KEY``) and :class:`~cryptography.fernet.MultiFernet` gives key
rotation for free (decrypt with any known key, encrypt with the first).  The values are small (tokens),
so Fernet's overhead does not matter.

Key sources, in order:

1. ``BAYSYNC_SECRET_KEY`` in the environment: one key, or several separated by commas (first = primary,
   the others only decrypt -- used while rotating);
2. the key file ``settings.secret_key_file`` or ``$BAYSYNC_HOME/secret.key``: one key per line (same
   meaning).  Created with a fresh key on first use, mode 0600.  A key file readable or writable by
   group/others is refused.

Rotation (what ``baysync keys rotate`` does; crash-safe at every step):

1. ``new_vault = begin_key_rotation(settings)``: writes the key file as ``NEW\\nOLD...`` (atomic
   replace), so from now on every process decrypts old and new rows and encrypts with NEW;
2. re-encrypt every stored secret: ``new_vault.reencrypt(blob)`` (or ``Vault.rotate`` on an in-memory
   vault), in a transaction;
3. ``finish_key_rotation(settings)``: drops the old keys from the file.

With ``BAYSYNC_SECRET_KEY`` the same is done by the operator: set ``NEW,OLD``, re-encrypt, set ``NEW``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

if TYPE_CHECKING:
    from .config import Settings


ENV_KEY = "BAYSYNC_SECRET_KEY"
KEY_FILE_NAME = "secret.key"


def register_secret(value: str) -> None:
    from sync_core.ebay.redact import register_secret as _register  # lazy: keep this module light

    _register(value)


class CryptoError(Exception):
    """A key or decryption problem, as one line for the operator (never containing key material)."""


def generate_key() -> str:
    """A fresh Fernet key (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


def _parse_keys(raw: str, source: str) -> list[str]:
    keys = [k.strip() for k in raw.replace(",", "\n").splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise CryptoError(f"{source} holds no key")
    for k in keys:
        try:
            Fernet(k.encode())
        except (ValueError, TypeError):
            raise CryptoError(f"{source} is not a valid key: expected 32 url-safe base64-encoded bytes "
                              f"(make one with: python -c 'from cryptography.fernet import Fernet; "
                              f"print(Fernet.generate_key().decode())')") from None
    return keys


def key_file_path(settings: Settings) -> Path:
    configured = getattr(settings, "secret_key_file", "") if settings is not None else ""
    if configured:
        return Path(configured).expanduser()
    return Path(settings.home) / KEY_FILE_NAME


def _check_perms(path: Path) -> None:
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CryptoError(f"key file {path} must not be accessible by group/others "
                          f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 {path}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid() and os.getuid() != 0:
        raise CryptoError(f"key file {path} is owned by another user (uid {st.st_uid})")


def _write_key_file(path: Path, keys: Sequence[str], *, exclusive: bool) -> bool:
    """Write ``keys`` (one per line) to ``path`` with mode 0600, atomically.

    ``exclusive``: create only if absent (returns False if another process won the race).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(keys) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # atomic create-if-absent, content already complete
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = ""
        return True
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def load_keys(settings: Settings, env: Mapping[str, str] | None = None, *, create: bool = True) -> tuple[list[str], str]:
    """(keys, source description).  Creates the key file with a fresh key when none exists and ``create``."""
    env = os.environ if env is None else env
    raw = env.get(ENV_KEY, "")
    if raw.strip():
        return _parse_keys(raw, ENV_KEY), ENV_KEY
    path = key_file_path(settings)
    if not path.exists():
        if not create:
            raise CryptoError(f"no encryption key: set {ENV_KEY} or create {path}")
        try:
            _write_key_file(path, [generate_key()], exclusive=True)
        except OSError as e:
            raise CryptoError(f"cannot create key file {path}: {e.strerror}") from None
    try:
        _check_perms(path)
        text = path.read_text()
    except OSError as e:
        raise CryptoError(f"cannot read key file {path}: {e.strerror}") from None
    return _parse_keys(text, f"key file {path}"), f"key file {path}"


class Vault:
    """Encrypts/decrypts short secrets.  ``keys[0]`` encrypts; every key decrypts."""

    def __init__(self, keys: Sequence[str | bytes] | str | bytes, *, source: str = "the configured key"):
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        if not keys:
            raise CryptoError("no encryption key given")
        self._keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
        for k in self._keys:
            register_secret(k)
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])
            self._primary = Fernet(self._keys[0].encode())
        except (ValueError, TypeError):
            raise CryptoError(f"{source} is not a valid key: expected 32 url-safe base64-encoded bytes") from None
        self.source = source

    def __repr__(self) -> str:
        return f"Vault(source={self.source!r}, keys={len(self._keys)})"

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None, *, create: bool = True) -> "Vault":
        keys, source = load_keys(settings, env, create=create)
        return cls(keys, source=source)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def encrypt(self, plaintext: str) -> bytes:
        if not isinstance(plaintext, str):
            raise TypeError("Vault.encrypt expects a str")
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes | str) -> str:
        if isinstance(token, str):
            token = token.encode("ascii", "replace")
        try:
            value = self._fernet.decrypt(bytes(token)).decode("utf-8")
        except (InvalidToken, ValueError, TypeError):
            raise CryptoError(f"cannot decrypt stored tokens: wrong {ENV_KEY} or key file ({self.source}); "
                              "restore the key that encrypted them, or reconnect the account") from None
        register_secret(value)
        return value

    def is_current(self, token: bytes) -> bool:
        """True if ``token`` is encrypted with the primary key (no re-encryption needed)."""
        try:
            self._primary.decrypt(bytes(token))
            return True
        except (InvalidToken, ValueError, TypeError):
            return False

    def reencrypt(self, token: bytes) -> bytes:
        """``token`` re-encrypted with the primary key (MultiFernet.rotate).  CryptoError if undecryptable."""
        try:
            return self._fernet.rotate(bytes(token))
        except (InvalidToken, ValueError, TypeError):
            raise CryptoError(f"cannot decrypt stored tokens: wrong {ENV_KEY} or key file ({self.source}); "
                              "nothing was re-encrypted") from None

    def rotate(self, new_key: str | bytes | None = None) -> "Vault":
        """A new Vault whose primary key is ``new_key`` (fresh if None) and which still decrypts with every
        key of this one.  Re-encrypt rows with ``new_vault.reencrypt(blob)``."""
        nk = new_key.decode() if isinstance(new_key, bytes) else (new_key or generate_key())
        return Vault([nk] + [k for k in self._keys if k != nk], source=self.source)

    def primary_only(self) -> "Vault":
        return Vault(self._keys[:1], source=self.source)

    def reencrypt_all(self, tokens: Iterable[bytes]) -> list[bytes]:
        return [self.reencrypt(t) for t in tokens]


def begin_key_rotation(settings: Settings, new_key: str | None = None, env: Mapping[str, str] | None = None) -> Vault:
    """Step 1 of a rotation with a key file: file becomes ``NEW`` + old keys; returns the new Vault.

    With ``BAYSYNC_SECRET_KEY`` set, the environment cannot be rewritten: raises CryptoError telling the
    operator what to set (use ``Vault.from_settings(...).rotate(new)`` for the re-encryption then).
    """
    env = os.environ if env is None else env
    if env.get(ENV_KEY, "").strip():
        raise CryptoError(f"{ENV_KEY} is set: put NEW_KEY,OLD_KEY into it, re-encrypt, then keep only NEW_KEY")
    current = Vault.from_settings(settings, env)
    rotated = current.rotate(new_key)
    path = key_file_path(settings)
    try:
        _write_key_file(path, rotated._keys, exclusive=False)
    except OSError as e:
        raise CryptoError(f"cannot write key file {path}: {e.strerror}") from None
    return Vault(rotated._keys, source=f"key file {path}")


def finish_key_rotation(settings: Settings, env: Mapping[str, str] | None = None) -> Vault:
    """Step 3: keep only the primary key in the key file (after every row was re-encrypted)."""
    env = os.environ if env is None else env
    if env.get(ENV_KEY, "").strip():
        raise CryptoError(f"{ENV_KEY} is set: remove the old key from it yourself")
    current = Vault.from_settings(settings, env, create=False)
    path = key_file_path(settings)
    try:
        _write_key_file(path, current._keys[:1], exclusive=False)
    except OSError as e:
        raise CryptoError(f"cannot write key file {path}: {e.strerror}") from None
    return current.primary_only()
