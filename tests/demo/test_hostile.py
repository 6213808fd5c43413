"""Hostile visitors against the real demo: parallel guessing, lockouts from elsewhere, long passwords.

Loopback is all of 127.0.0.0/8 on Linux, so clients bound to 127.0.0.2, 127.0.0.3... reach the
server from addresses of their own, over real TCP.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sessio.demo.api import MAX_LOGIN_BODY

from .conftest import Demo, csrf_from
from .forms import PASSWORD, flashes, login, register, signed_in_as

WRONG = "Wrong username or password."
THROTTLED = "Too many failed attempts; wait a few minutes and try again."


def from_address(demo: Demo, address: str) -> httpx.Client:
    """A new visitor whose connections come from ``address`` (a loopback alias)."""
    return demo.client(transport=httpx.HTTPTransport(local_address=address))


@pytest.mark.parametrize("sessions", [24, 1], ids=["24-browsers", "one-session"])
def test_parallel_wrong_passwords_are_counted_before_any_is_checked(
    demo: Demo, sessions: int
) -> None:
    register(demo.client(), "ada")
    visitors = [demo.client() for _ in range(sessions)]
    tokens = [csrf_from(v.get("/login").text) for v in visitors]
    start = threading.Barrier(24)

    def guess(i: int) -> list[tuple[str, str]]:
        who = i % sessions
        form = {"username": "ada", "password": f"guess number {i}", "csrf_token": tokens[who]}
        start.wait(timeout=30)
        return flashes(visitors[who].post("/login", data=form).text)

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(guess, range(24)))
    said = [message for found in answers for _, message in found]
    assert said.count(WRONG) == 5
    assert said.count(THROTTLED) == 19
    # The pair (ada, this address) is locked; ada elsewhere is not.
    assert flashes(login(demo.client(), "ada").text) == [("error", THROTTLED)]
    phone = from_address(demo, "127.0.0.2")
    assert login(phone, "ada").status_code == 303
    assert signed_in_as(phone) == "ada"


async def test_parallel_api_guesses_with_gather(demo: Demo) -> None:
    register(demo.client(), "ada")
    async with httpx.AsyncClient(base_url=demo.url, timeout=30) as client:
        guesses = [
            client.post("/api/login", json={"username": "ada", "password": f"guess {i}"})
            for i in range(24)
        ]
        statuses = [r.status_code for r in await asyncio.gather(*guesses)]
        assert statuses.count(401) == 5
        assert statuses.count(429) == 19
        locked = await client.post("/api/login", json={"username": "ada", "password": PASSWORD})
        assert locked.status_code == 429


def test_nobody_elsewhere_can_lock_the_owner_out(demo: Demo) -> None:
    owner = demo.client()
    register(owner, "ada")
    attacker = from_address(demo, "127.0.0.3")
    for i in range(10):
        login(attacker, "ada", f"guess number {i}")
    assert flashes(login(attacker, "ada").text) == [("error", THROTTLED)]
    assert login(owner, "ada").status_code == 303
    assert signed_in_as(owner) == "ada"


def test_failures_for_a_missing_name_do_not_lock_the_address(demo: Demo) -> None:
    register(demo.client(), "ada")
    office = from_address(demo, "127.0.0.4")
    answers = [flashes(login(office, "nobody", "not the password").text) for _ in range(7)]
    assert answers == [[("error", WRONG)]] * 5 + [[("error", THROTTLED)]] * 2
    colleague = from_address(demo, "127.0.0.4")
    assert login(colleague, "ada").status_code == 303
    assert signed_in_as(colleague) == "ada"


def test_an_address_spraying_many_names_is_stopped_there_only(demo: Demo) -> None:
    register(demo.client(), "ada")
    sprayer = from_address(demo, "127.0.0.5")
    answers = [flashes(login(sprayer, f"name{i}", "not the password").text) for i in range(21)]
    assert answers[:20] == [[("error", WRONG)]] * 20
    assert answers[20] == [("error", THROTTLED)]
    # Every name from that address now waits, ada included; ada from anywhere else does not.
    assert flashes(login(from_address(demo, "127.0.0.5"), "ada").text) == [("error", THROTTLED)]
    assert login(demo.client(), "ada").status_code == 303


def test_a_right_password_is_not_held_against_the_address(demo: Demo) -> None:
    register(demo.client(), "ada")
    visitor = from_address(demo, "127.0.0.6")
    for _ in range(30):  # more than the address allows for failures
        assert login(visitor, "ada").status_code == 303


def test_password_limits_are_stated_as_they_are(demo: Demo) -> None:
    client = demo.client()
    form = client.get("/register").text
    assert "8 to 1024 characters" in form
    assert 'maxlength="1024"' in form
    assert 'minlength="8"' in form
    too_long = register(client, "ada", "x" * 2000)
    assert too_long.status_code == 400
    assert flashes(too_long.text) == [
        ("error", "Passwords need 8 to 1024 characters; that one has 2000.")
    ]
    assert register(client, "ada", "y" * 1024).status_code == 303
    # A login with an overlong password is simply wrong: no account can have one.
    assert flashes(login(client, "ada", "y" * 5000).text) == [("error", WRONG)]
    assert login(client, "ada", "y" * 1024).status_code == 303


def test_the_api_reads_no_more_than_a_login_needs(demo: Demo) -> None:
    client = demo.client()
    huge = '{"username": "ada", "password": "' + "x" * (MAX_LOGIN_BODY + 1) + '"}'
    declared = client.post("/api/login", content=huge, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "BODY_TOO_LARGE"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the size shows only as it comes
        for start in range(0, len(huge), 4096):
            yield huge[start : start + 4096].encode()

    streamed = client.post(
        "/api/login", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    register(client, "ada")
    fine = client.post("/api/login", json={"username": "ada", "password": PASSWORD})
    assert fine.status_code == 200


def test_megabyte_usernames_share_one_count(demo: Demo) -> None:
    client = demo.client()
    names = [("n" * 100_000) + str(i) for i in range(6)]  # alike in their first 64 characters
    answers = [flashes(login(client, name, "not the password").text) for name in names]
    assert answers == [[("error", WRONG)]] * 5 + [[("error", THROTTLED)]]
