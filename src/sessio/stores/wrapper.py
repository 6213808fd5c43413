"""StoreWrapper: a store in front of another store, every contract operation passed through one hook.

A wrapper that watches or changes calls (timing, tracing, encrypting) overrides
:meth:`StoreWrapper.around` (async) and :meth:`StoreWrapper.around_sync` instead of writing one
forwarder per contract method: each operation reaches the inner store through them, named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError
from .base import Page, Record, Saved, Store, Write

__all__ = ["StoreWrapper"]

T = TypeVar("T")


class StoreWrapper(Store):
    """Passes every operation to ``inner``, through :meth:`around` / :meth:`around_sync`."""

    def __init__(self, inner: Store) -> None:
        if not isinstance(inner, Store):
            raise ConfigurationError(
                f"{type(self).__name__} wraps a server-side sessio Store, got {type(inner).__name__}"
            )
        super().__init__(clock=inner.clock)
        self.inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    async def around(self, operation: str, call: Callable[[], Awaitable[T]], *args: Any) -> T:
        """Run ``call`` (the inner store's ``operation`` on ``args``); override to watch it."""
        return await call()

    def around_sync(self, operation: str, call: Callable[[], T], *args: Any) -> T:
        """Sync twin of :meth:`around`."""
        return call()

    # -- async ------------------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return await self.around("load", lambda: self.inner.load(key), key)

    async def save(self, key: str, write: Write) -> Saved:
        return await self.around("save", lambda: self.inner.save(key, write), key, write)

    async def delete(self, key: str) -> bool:
        return await self.around("delete", lambda: self.inner.delete(key), key)

    async def principal_records(self, principal: str) -> list[Record]:
        inner = self.inner
        return await self.around("principal_records", lambda: inner.principal_records(principal))

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        call = lambda: self.inner.delete_principal_records(principal, keep)  # noqa: E731
        return await self.around("delete_principal_records", call)

    async def exists(self, key: str) -> bool:
        return await self.around("exists", lambda: self.inner.exists(key), key)

    async def count(self) -> int:
        return await self.around("count", self.inner.count)

    async def clear(self) -> int:
        return await self.around("clear", self.inner.clear)

    async def cleanup(self) -> int:
        return await self.around("cleanup", self.inner.cleanup)

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        return await self.around("page", lambda: self.inner.page(cursor, limit))

    async def close(self) -> None:
        await self.inner.close()

    # -- sync ---------------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self.around_sync("load", lambda: self.inner.load_sync(key), key)

    def save_sync(self, key: str, write: Write) -> Saved:
        return self.around_sync("save", lambda: self.inner.save_sync(key, write), key, write)

    def delete_sync(self, key: str) -> bool:
        return self.around_sync("delete", lambda: self.inner.delete_sync(key), key)

    def principal_records_sync(self, principal: str) -> list[Record]:
        inner = self.inner
        return self.around_sync(
            "principal_records", lambda: inner.principal_records_sync(principal)
        )

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        call = lambda: self.inner.delete_principal_records_sync(principal, keep)  # noqa: E731
        return self.around_sync("delete_principal_records", call)

    def exists_sync(self, key: str) -> bool:
        return self.around_sync("exists", lambda: self.inner.exists_sync(key), key)

    def count_sync(self) -> int:
        return self.around_sync("count", self.inner.count_sync)

    def clear_sync(self) -> int:
        return self.around_sync("clear", self.inner.clear_sync)

    def cleanup_sync(self) -> int:
        return self.around_sync("cleanup", self.inner.cleanup_sync)

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        return self.around_sync("page", lambda: self.inner.page_sync(cursor, limit))

    def close_sync(self) -> None:
        self.inner.close_sync()
