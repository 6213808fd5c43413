"""The one store write of a migration: claim a legacy cookie's mark, then import its data.

The claim is a :class:`~sessio.stores.base.Create` under the cookie's mark, which applies only
if no live record holds it, atomically in every store: of two requests replaying one legacy
cookie (in parallel, or in two worker processes) exactly one imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..manager import SessionManager, SyncSessionManager
from ..session import Session
from ..stores.base import Store

if TYPE_CHECKING:
    from .._exchange import Exchange

__all__ = ["adopt", "adopt_sync"]


async def adopt(manager: SessionManager, exchange: Exchange[Any], session: Session) -> None:
    """Import the legacy cookie ``exchange`` found into ``session`` (new), exactly once."""
    found = exchange.legacy
    store = manager.store
    if found is None or not session.is_new or not isinstance(store, Store):
        return
    saved = await store.save(found.mark, found.claim)
    exchange.migrated(session, claimed=bool(saved))


def adopt_sync(manager: SyncSessionManager, exchange: Exchange[Any], session: Session) -> None:
    """:func:`adopt` for the sync manager (WSGI, Flask)."""
    found = exchange.legacy
    store = manager.store
    if found is None or not session.is_new or not isinstance(store, Store):
        return
    saved = store.save_sync(found.mark, found.claim)
    exchange.migrated(session, claimed=bool(saved))
