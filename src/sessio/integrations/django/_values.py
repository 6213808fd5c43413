"""Session values as Django writes them: ``SESSION_SERIALIZER``'s bytes, signed with ``SECRET_KEY``.

Django's database and file backends sign the whole session (``SessionBase.encode``); sessio
stores each key on its own, so that two requests changing different keys both land, and signs
each value the same way (:class:`django.core.signing.Signer`, ``compress=True``) under the
backend's ``key_salt`` and the key's name. ``SECRET_KEY_FALLBACKS`` still verify, and a value
signed by an old key is signed again by the current one at the session's next save.

Django's ``TimestampSigner`` is left out: no session read checks the time, and without it the
text of an unchanged value is the same on every save, so a save writes only what changed.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

from django.core import signing

from ...session import Session

__all__ = ["apply", "decode_all", "encode"]

security_log = logging.getLogger("django.security.SuspiciousSession")


def _signer(salt: str, name: str) -> signing.Signer:
    # Salted with the key's name too: a value signed for one key does not verify under another.
    return signing.Signer(salt=f"{salt}:{name}")


def encode(salt: str, serializer: type[Any], name: str, value: Any) -> str:
    """The stored text of ``value`` under ``name`` (raises the serializer's error, as Django)."""
    return _signer(salt, name).sign_object(value, serializer=serializer, compress=True)


def decode_all(salt: str, serializer: type[Any], texts: Mapping[str, Any]) -> dict[str, Any]:
    """The values ``texts`` hold, by name; a value that fails to verify or decode is left out.

    A bad signature is logged once per session on ``django.security.SuspiciousSession``
    ("Session data corrupted"), as Django logs it; the next save removes what was left out.
    """
    values: dict[str, Any] = {}
    tampered = False
    for name, text in texts.items():
        if not isinstance(text, str):
            tampered = True
            continue
        try:
            values[name] = _signer(salt, name).unsign_object(text, serializer=serializer)
        except signing.BadSignature:
            tampered = True
        except (ValueError, TypeError, zlib.error):
            # Signed but unreadable: a SESSION_SERIALIZER change. Django empties the session
            # silently in this case; sessio loses only this value.
            continue
    if tampered:
        security_log.warning("Session data corrupted")
    return values


def apply(salt: str, serializer: type[Any], data: Mapping[str, Any], session: Session) -> None:
    """Make ``session`` hold ``data``, encoded, setting only the keys whose text changed."""
    for name in [name for name in session if name not in data]:
        del session[name]
    for name, value in data.items():
        text = encode(salt, serializer, name, value)
        if session.get(name) != text:
            session[name] = text
