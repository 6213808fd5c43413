"""The session of the aiohttp integration: a sessio Session with aiohttp-session's names."""

from __future__ import annotations

from .. import session as _session
from ..manager import SessionManager

__all__ = ["Manager", "Session"]


class Session(_session.Session):
    """The session of an aiohttp request: a sessio :class:`~sessio.Session` that answers to
    aiohttp-session's names as well."""

    __slots__ = ()

    @property
    def new(self) -> bool:
        """Whether no store has seen this session yet (aiohttp-session's ``new``)."""
        return self.is_new

    @property
    def identity(self) -> str:
        """The session's ID (aiohttp-session's ``identity``): the store key derives from it."""
        return self.id

    @property
    def created(self) -> int:
        """When the session began, in whole epoch seconds."""
        return int(self.meta.created_at)

    @property
    def empty(self) -> bool:
        """Whether the session holds no data."""
        return not self

    def changed(self) -> None:
        """Kept for aiohttp-session's apps: sessio compares values at commit, so a value
        changed in place is saved without being flagged."""

    def invalidate(self) -> None:
        """End the session: its record is deleted and its cookie cleared at commit, so the next
        request starts a new one (sessio's :meth:`~sessio.Session.destroy`). Unlike
        aiohttp-session, writing to it afterwards raises
        :class:`~sessio.errors.SessionInvalid`: ``await new_session(request)`` starts anew."""
        self.destroy()


class Manager(SessionManager):
    """A :class:`~sessio.SessionManager` whose sessions are this module's :class:`Session`:
    the one to build when passing ``manager=`` to :func:`setup`."""

    session_class = Session
