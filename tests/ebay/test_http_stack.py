"""The HTTP stack under the eBay client does no per-request work it does not need."""

import asyncio
import sys

from httpcore._synchronization import current_async_library


def test_httpcore_finds_its_async_library_without_searching_sys_path():
    """httpcore runs ``import sniffio`` on every lock, event and semaphore it creates (several per request)
    and falls back to asyncio on ImportError; a failed import is not cached, so without sniffio installed
    each of them searched sys.path again (encode/httpcore#1103: anyio 4.11 stopped depending on sniffio).
    sniffio is a declared dependency: the import must be a sys.modules lookup, no finder asked."""
    asked: list[str] = []

    class Spy:
        @staticmethod
        def find_spec(name, path=None, target=None):
            asked.append(name)
            return None

    async def detect() -> list[str]:
        return [current_async_library() for _ in range(3)]

    sys.meta_path.insert(0, Spy)  # type: ignore[arg-type]
    try:
        found = asyncio.run(detect())
    finally:
        sys.meta_path.remove(Spy)  # type: ignore[arg-type]
    assert found == ["asyncio"] * 3
    assert "sniffio" not in asked
