"""The session classes of the Flask drop-in: a sessio Session that is also Flask's SessionMixin."""

from __future__ import annotations

from typing import Any, NoReturn

from flask.sessions import SessionMixin
from markupsafe import Markup

from ..codec import Tag
from ..errors import SessionError
from ..session import Session

__all__ = ["MARKUP_TAG", "FlaskSession", "UnavailableSession"]

#: ``markupsafe.Markup`` in the codec, so flashed ``Markup`` comes back as ``Markup`` (Flask's
#: ``TagMarkup``).
MARKUP_TAG = Tag("markup", Markup, str, Markup)


class FlaskSession(Session, SessionMixin):
    """``flask.session``: a sessio :class:`~sessio.Session` with Flask's ``SessionMixin``.

    ``permanent`` lives in the ``_permanent`` key, as in Flask. ``modified`` follows the
    writes sessio records (in-place changes to values included, so ``session.modified = True``
    is never needed); setting it to ``True`` re-sends the cookie, and setting it to ``False``
    does not discard writes: sessio never drops data the app wrote.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._modified_flag: bool | None = None
        #: What the interface read from the app's config when it opened this session.
        self._settings: object = None

    @property
    def new(self) -> bool:  # type: ignore[override]
        """Whether the session is not stored yet (Flask's ``SessionMixin.new``)."""
        return self.is_new

    @property
    def modified(self) -> bool:
        """Whether this request changed the session (Flask's ``SessionMixin.modified``)."""
        return self.is_modified if self._modified_flag is None else self._modified_flag

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified_flag = bool(value)

    @property
    def accessed(self) -> bool:
        """Whether the request read the session, which adds ``Vary: Cookie``."""
        return self.is_accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self.is_accessed = bool(value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._modified_flag = None

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._modified_flag = None

    def _holds_nothing(self) -> bool:
        return not (dict.__len__(self) or self._principal or self._flashes or self._csrf_secret)


class UnavailableSession(SessionMixin):
    """Stands in for a session the store could not load: any use raises the store's error.

    A view that never touches the session still answers; one that does gets the error (503
    JSON with :meth:`SessionInterface.init_app`). Nothing is saved.
    """

    def __init__(self, error: SessionError) -> None:
        self._error = error

    def fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Raise the load error again."""
        raise type(self._error)(self._error.message, **self._error.evidence) from self._error

    __getitem__ = __setitem__ = __delitem__ = __iter__ = __len__ = fail

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self.fail()
