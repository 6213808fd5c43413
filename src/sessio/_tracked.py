"""TrackedDict: a real ``dict`` that encodes each value as it is set and records what changed.

The base of :class:`~sessio.Session`: reads mark it accessed (for ``Vary: Cookie``), writes are
encoded at once (an unencodable value fails naming its key) and recorded for the commit's
delta, and values changed in place (``s["cart"].append(x)``) are found at commit by comparing
encodings.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from decimal import Decimal
from typing import Any, TypeVar

from .codec import Codec
from .errors import SessionInvalid
from .fields import DATA_PREFIX

__all__ = ["TrackedDict"]

T = TypeVar("T")

# Values that cannot change in place: their encoding at set time is final.
IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, uuid.UUID, Decimal}
)

_MISSING: Any = object()


class TrackedDict(dict[str, Any]):
    """The data of a session as a ``dict``, with its writes recorded (see the module docs)."""

    __slots__ = (
        "_codec",
        "_dirty",
        "_raw",
        "_removed",
        "_stored",
        "is_accessed",
        "is_destroyed",
        "is_new",
    )

    def __init__(self, codec: Codec, stored: Mapping[str, str], *, is_new: bool) -> None:
        self._codec = codec
        # A value's encoding is what this session set (_raw), or else the text it was loaded
        # from (_stored, the record's fields as they came, not copied key by key).
        self._stored = stored
        self._raw: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self.is_new = is_new
        self.is_destroyed = False
        self.is_accessed = False

    def _check_alive(self) -> None:
        if self.is_destroyed:
            raise SessionInvalid("the session was destroyed in this request")

    def _encoding(self, key: str) -> str:
        """The JSON text of data key ``key`` (present in the session) as last set or loaded."""
        text = self._raw.get(key)
        return self._stored[DATA_PREFIX + key] if text is None else text

    def __getitem__(self, key: str) -> Any:
        self.is_accessed = True
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]``, or ``default`` when missing."""
        self.is_accessed = True
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self.is_accessed = True
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self.is_accessed = True
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.is_accessed = True
        return dict.__len__(self)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        """The data keys."""
        self.is_accessed = True
        return dict.keys(self)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        """The data values."""
        self.is_accessed = True
        return dict.values(self)

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        """The data items."""
        self.is_accessed = True
        return dict.items(self)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, got {type(key).__name__}")
        self._check_alive()
        self.is_accessed = True
        self._raw[key] = self._codec.dumps(value, key=key)  # fails here, naming the key
        dict.__setitem__(self, key, value)
        self._dirty.add(key)
        self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        self._check_alive()
        self.is_accessed = True
        dict.__delitem__(self, key)
        self._raw.pop(key, None)
        self._dirty.discard(key)
        if not self.is_new:  # a never-stored session has nothing to remove from the store
            self._removed.add(key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``; ``KeyError`` without one)."""
        if dict.__contains__(self, key):
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        self.is_accessed = True
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item (``KeyError`` when empty, as ``dict``)."""
        if not dict.__len__(self):
            raise KeyError("popitem(): session is empty")
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``session[key]``, first setting it to ``default`` when missing."""
        if not dict.__contains__(self, key):
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set many keys, like ``dict.update``."""
        items = other.keys() if hasattr(other, "keys") else None
        if items is not None:
            for key in items:
                self[key] = other[key]
        else:
            for key, value in other:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Remove every data key (flash messages, CSRF secret and principal stay)."""
        for key in list(dict.keys(self)):
            del self[key]

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` of the data."""
        self.is_accessed = True
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self, other)

    __hash__ = None

    def __reduce__(self) -> Any:
        raise TypeError("sessions are not picklable; copy the data with dict(session)")

    def get_as(self, key: str, model: type[T], default: Any = None) -> T | Any:
        """``session[key]`` as an instance of ``model``: a dataclass, pydantic or msgspec model.

        Returns ``default`` when the key is missing; raises ``TypeError``/the model's own
        validation error when the stored value does not fit the model.
        """
        from .typed import convert

        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        return convert(value, model)

    def _mutated(self) -> list[tuple[str, str]]:
        """Stored values whose encoding changed in place since they were loaded."""
        out = []
        for key, value in dict.items(self):
            if type(value) in IMMUTABLE or key in self._dirty:
                continue
            text = self._codec.dumps(value, key=key)
            if text != self._encoding(key):
                out.append((key, text))
        return out
