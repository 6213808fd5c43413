"""Transports: cookie, header and bearer tokens, signed under rotating keys."""

from __future__ import annotations

from .base import (
    BearerTransport,
    CookieTransport,
    Headers,
    HeaderTransport,
    Transport,
    read_token,
    transports_for,
)
from .cookies import parse_cookie_header, render_delete_cookie, render_set_cookie
from .signing import RawTokens, Secret, TokenSigner

__all__ = [
    "BearerTransport",
    "CookieTransport",
    "HeaderTransport",
    "Headers",
    "RawTokens",
    "Secret",
    "TokenSigner",
    "Transport",
    "parse_cookie_header",
    "read_token",
    "render_delete_cookie",
    "render_set_cookie",
    "transports_for",
]
