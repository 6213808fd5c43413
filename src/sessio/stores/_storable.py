"""What no store can hold: text that is not valid Unicode (a lone surrogate has no UTF-8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ValueNotSerializable

if TYPE_CHECKING:
    from .base import Write

__all__ = ["ensure_storable"]


def _utf8(text: str, what: str) -> None:
    if type(text) is not str and not isinstance(text, str):
        raise ValueNotSerializable(f"{what} cannot be stored: it is not text", field=what)
    if not text.isascii():  # (the common case costs one scan, and no copy)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueNotSerializable(
                f"{what} cannot be stored: it is not valid Unicode text (a lone surrogate)",
                field=what,
            ) from None


def ensure_storable(key: str, write: Write) -> None:
    """Raise :class:`~sessio.errors.ValueNotSerializable` unless every text in ``write`` is
    valid UTF-8 (a lone surrogate is not): what every store must refuse, checked once for the
    stores that would otherwise take it (memory) or fail late (an encoder deep in a driver)."""
    # (ASCII is the common case: one C-level scan per text, no call of ours.)
    if type(key) is not str or not key.isascii():
        _utf8(key, "key")
    for name, text in write.fields.items():
        if (
            type(name) is not str
            or type(text) is not str
            or not (name.isascii() and text.isascii())
        ):
            _utf8(name, "field name")
            _utf8(text, name)
    principal = write.principal
    if principal is not None and (type(principal) is not str or not principal.isascii()):
        _utf8(principal, "principal")
    stone = getattr(write, "tombstone", None)  # a Rotate's
    if stone is not None:
        _utf8(stone.key, "key")
        for name, text in stone.fields.items():
            _utf8(name, "field name")
            _utf8(text, name)
