"""sessio: server-side web sessions for Python, one policy-driven core for every framework.

The public API lives here; stores are in :mod:`sessio.stores`, framework integrations are
imported by path (``sessio.integrations.starlette``, ``sessio.integrations.flask``...).
"""

from __future__ import annotations

from .codec import Codec, Tag
from .errors import (
    AuthenticationRequired,
    ConcurrencyLimitExceeded,
    ConfigurationError,
    CSRFFailed,
    MissingDependency,
    PermissionDenied,
    ReauthenticationRequired,
    RecordCorrupt,
    SessionError,
    SessionExpired,
    SessionInvalid,
    SessionNotFound,
    SessionTooLarge,
    StoreUnavailable,
    TokenInvalid,
    ValueNotSerializable,
)
from .events import EventKind, Events, SessionEvent
from .manager import (
    Commit,
    CommitAction,
    CommitOutcome,
    SessionInfo,
    SessionManager,
    SyncSessionManager,
)
from .policy import ConcurrencyPolicy, CookieOptions, Policy
from .principal import Principal
from .session import Session, SessionMeta
from .stores import FileStore, MemoryStore, SQLiteStore, Store, store_from_url

__version__ = "0.1.0"

__all__ = [
    "AuthenticationRequired",
    "CSRFFailed",
    "Codec",
    "Commit",
    "CommitAction",
    "CommitOutcome",
    "ConcurrencyLimitExceeded",
    "ConcurrencyPolicy",
    "ConfigurationError",
    "CookieOptions",
    "EventKind",
    "Events",
    "FileStore",
    "MemoryStore",
    "MissingDependency",
    "PermissionDenied",
    "Policy",
    "Principal",
    "ReauthenticationRequired",
    "RecordCorrupt",
    "SQLiteStore",
    "Session",
    "SessionError",
    "SessionEvent",
    "SessionExpired",
    "SessionInfo",
    "SessionInvalid",
    "SessionManager",
    "SessionMeta",
    "SessionNotFound",
    "SessionTooLarge",
    "Store",
    "StoreUnavailable",
    "SyncSessionManager",
    "Tag",
    "TokenInvalid",
    "ValueNotSerializable",
    "__version__",
    "store_from_url",
]
