"""``client_changed``: a session used from another IP network or browser family is announced
(coarse old/new values, never an ID), and, with ``bind``, flagged or ended."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessio import ConfigurationError, EventKind, Policy, Principal
from sessio._client import agent_family, changes, network

from .conftest import FakeClock
from .drive import MODES, Drive

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
FIREFOX_PATCH = "Mozilla/5.0 (X11; Linux x86_64; rv:126.1) Gecko/20100101 Firefox/126.1"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/125.0.2535.51"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)


def test_agent_families() -> None:
    assert agent_family(FIREFOX) == "Firefox 126"
    assert agent_family(FIREFOX_PATCH) == "Firefox 126"
    assert agent_family(CHROME) == "Chrome 125"
    assert agent_family(EDGE) == "Edge 125"
    assert agent_family(SAFARI) == "Safari 17"
    assert agent_family("curl/8.5.0") == "curl 8"
    assert agent_family("") is None
    assert agent_family("\x00 garbage") == "other"


def test_networks() -> None:
    assert network("203.0.113.7", 24, 64) == "203.0.113.0/24"
    assert network("2001:db8:1:2:3:4:5:6", 24, 64) == "2001:db8:1:2::/64"
    assert network("::ffff:203.0.113.7", 24, 64) == "203.0.113.0/24"
    assert network("[2001:db8::1]", 24, 48) == "2001:db8::/48"
    for bad in ("", "localhost", "1.2.3.4.5", "x" * 1000, "999.1.1.1"):
        assert network(bad, 24, 64) is None
    # Same /24, other host: no change. Unknown sides never count as a move.
    assert changes("203.0.113.7", None, "203.0.113.99", None, ipv4_prefix=24, ipv6_prefix=64) == {}
    assert changes(None, FIREFOX, "1.1.1.1", CHROME, ipv4_prefix=24, ipv6_prefix=64) == {
        "user_agent": ("Firefox 126", "Chrome 125")
    }


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_hostile_user_agents_parse_quickly_and_boundedly(text: str) -> None:
    family = agent_family(text)
    assert family is None or len(family) <= 40


def test_a_pathological_user_agent_costs_linear_time() -> None:
    hostile = "Version/1" * 100_000 + " Chrome/" + "9" * 100_000
    started = time.perf_counter()
    agent_family(hostile)
    # Not a speed assertion: only the first 512 characters are ever read.
    assert time.perf_counter() - started < 5


def test_the_policy_checks_binding() -> None:
    for bad in ({"bind": "user_agent"}, {"bind": ("ip",)}, {"on_client_change": "kill"},
                {"client_network": (33, 64)}, {"client_network": (24, 0)}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            Policy(**bad)  # type: ignore[arg-type]


async def _stored(d: Drive, **client: str) -> str:
    session = await d.load(None, **client)
    session.login(Principal("alice"))
    commit = await d.commit(session)
    assert commit.token is not None
    return commit.token


def _changed(d: Drive) -> list[dict[str, object]]:
    return [dict(e.detail) for e in d.events if e.kind is EventKind.CLIENT_CHANGED]


@pytest.mark.parametrize("mode", MODES)
async def test_another_agent_fires_client_changed_without_an_id(
    mode: str, clock: FakeClock
) -> None:
    d = Drive(mode, clock=clock)
    token = await _stored(d, ip="203.0.113.7", user_agent=FIREFOX)
    same = await d.load(token, ip="203.0.113.8", user_agent=FIREFOX_PATCH)
    assert same.principal is not None
    assert _changed(d) == []  # same /24, same family: nothing to say
    moved = await d.load(token, ip="198.51.100.1", user_agent=CHROME)
    assert moved.principal is not None  # no bind: the event only
    assert _changed(d) == [
        {
            "action": "none",
            "network_old": "203.0.113.0/24",
            "network_new": "198.51.100.0/24",
            "user_agent_old": "Firefox 126",
            "user_agent_new": "Chrome 125",
        }
    ]
    event = next(e for e in d.events if e.kind is EventKind.CLIENT_CHANGED)
    assert event.session is not None
    assert re.fullmatch("[0-9a-f]{12}", event.session)
    assert token not in repr(event.as_dict())


@pytest.mark.parametrize("mode", MODES)
async def test_bind_end_destroys_the_replayed_session(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=Policy(bind=("user_agent",), on_client_change="end"))
    token = await _stored(d, ip="203.0.113.7", user_agent=FIREFOX)
    replay = await d.load(token, ip="203.0.113.7", user_agent=CHROME)
    assert replay.is_new
    assert replay.principal is None  # a fresh session
    assert _changed(d)[0]["action"] == "end"
    # Gone for the rightful owner too: the copy cannot be told from the original.
    assert (await d.load(token, user_agent=FIREFOX)).is_new
    # A move of network alone is not bound here: announced, not acted on.
    token = await _stored(d, ip="203.0.113.7", user_agent=FIREFOX)
    kept = await d.load(token, ip="198.51.100.1", user_agent=FIREFOX)
    assert kept.principal is not None
    assert _changed(d)[-1]["action"] == "none"


@pytest.mark.parametrize("mode", MODES)
async def test_bind_flag_marks_the_session_in_the_device_list(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=Policy(bind=("network", "user_agent")))
    token = await _stored(d, ip="203.0.113.7", user_agent=FIREFOX)
    session = await d.load(token, ip="2001:db8::1", user_agent=FIREFOX)
    assert session.principal is not None
    await d.commit(session)
    (info,) = await d("sessions_of", Principal("alice"))
    assert info.flagged == "network"
    session = await d.load(token, ip="2001:db8::1", user_agent=CHROME)
    await d.commit(session)
    (info,) = await d("sessions_of", Principal("alice"))
    assert info.flagged == "network,user_agent"


@pytest.mark.parametrize("mode", MODES)
async def test_two_parallel_requests_from_different_agents(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=Policy(bind=("user_agent",), on_client_change="end"))
    token = await _stored(d, user_agent=FIREFOX)
    if mode == "async":
        first, second = await asyncio.gather(
            d.load(token, user_agent=CHROME), d.load(token, user_agent=SAFARI)
        )
    else:
        first, second = (
            await d.load(token, user_agent=CHROME),
            await d.load(token, user_agent=SAFARI),
        )
    assert first.is_new
    assert second.is_new
    for fresh in (first, second):
        fresh["x"] = 1
        await d.commit(fresh)
    assert [c["action"] for c in _changed(d)] in (["end", "end"], ["end"])
    assert (await d.load(token, user_agent=FIREFOX)).is_new


@pytest.mark.parametrize("mode", MODES)
async def test_parallel_flags_from_two_agents_both_land(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=Policy(bind=("user_agent", "network")))
    token = await _stored(d, ip="203.0.113.7", user_agent=FIREFOX)
    first = await d.load(token, ip="203.0.113.7", user_agent=CHROME)
    second = await d.load(token, ip="198.51.100.9", user_agent=FIREFOX)
    await d.commit(first)
    await d.commit(second)
    (info,) = await d("sessions_of", Principal("alice"))
    assert info.flagged in ("network", "user_agent")  # the last write's sighting stands
    assert len(_changed(d)) == 2
