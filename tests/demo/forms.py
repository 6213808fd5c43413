"""The shop as a browser without JavaScript uses it: forms with CSRF tokens, flashes, device rows."""

from __future__ import annotations

import html
import re

import httpx

from .conftest import csrf_from

PASSWORD = "correct horse battery"
_FLASH = re.compile(r'<div class="flash flash-(\w+)" role="status">(.*?)</div>', re.S)
_DEVICE_ROW = re.compile(r"<tr( class=\"current\")?>(.*?)</tr>", re.S)


def flashes(page: str) -> list[tuple[str, str]]:
    return [(kind, html.unescape(text.strip())) for kind, text in _FLASH.findall(page)]


def post_form(
    client: httpx.Client, path: str, data: dict[str, str], *, via: str = "/"
) -> httpx.Response:
    """Submit a form the way a browser does: with the CSRF token of a page just loaded."""
    token = csrf_from(client.get(via).text)
    return client.post(path, data={**data, "csrf_token": token})


def register(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return post_form(
        client, "/register", {"username": username, "password": password}, via="/register"
    )


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return post_form(client, "/login", {"username": username, "password": password}, via="/login")


def signed_in_as(client: httpx.Client) -> str | None:
    found = re.search(r'id="whoami">([^<]+)<', client.get("/").text)
    return found.group(1) if found else None


def device_rows(client: httpx.Client) -> list[tuple[bool, str]]:
    """``(is this device, stored key)`` for each row of /devices."""
    page = client.get("/devices").text
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    rows = []
    for current, row in _DEVICE_ROW.findall(body):
        key = re.search(r'<span class="mono">([0-9a-f]{12})</span>', row)
        assert key is not None
        rows.append((bool(current), key.group(1)))
    return rows
