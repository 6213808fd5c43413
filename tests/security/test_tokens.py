"""Tokens as hostile input: tampered, forged, oversized, duplicated, NUL, non-ASCII; ID entropy;
signing-key rotation."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import secrets

import pytest

from sessio import ConfigurationError, Principal, Session
from sessio.ids import ID_BYTES, is_well_formed, new_session_id
from sessio.transports import Secret, TokenSigner
from sessio.transports.signing import MAX_TOKEN_LENGTH

from .conftest import KEY_NEW, KEY_OLD, Browser, Site, write


def owned(site: Site) -> tuple[Browser, str]:
    """A logged-in browser and its valid token."""
    browser = Browser(site)
    browser.visit(lambda s: s.login(Principal("alice")))
    assert browser.cookie is not None
    return browser, browser.cookie


def anonymous(site: Site, cookie_header: str) -> Session:
    """The session a raw ``Cookie`` header gets; it must be a fresh, empty one."""
    session = site.request([("cookie", cookie_header)]).session
    assert session.is_new
    assert not session.is_authenticated
    assert not dict(session)
    return session


def flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another of the base64url alphabet."""
    char = "A" if text[index] != "A" else "B"
    return text[:index] + char + text[index + 1 :]


def test_tampered_id_or_mac_gives_a_fresh_session(site: Site) -> None:
    """ASVS 4.0.3 3.5.3 / ASVS 5.0 9.1.1: the token is verified (HMAC-SHA256) before it names
    anything; one changed character anywhere gives a fresh session."""
    _, token = owned(site)
    for index in (0, 20, 42, 44, 60, len(token) - 1):
        anonymous(site, f"{site.name}={flip(token, index)}")


def test_forged_token_under_another_key_gives_a_fresh_session(site: Site) -> None:
    """ASVS 4.0.3 3.5.3 (key substitution) / ASVS 5.0 9.1.3: only the configured keys verify."""
    _, token = owned(site)
    session_id = token.partition(".")[0]
    forged = TokenSigner("an-attacker-key-of-the-right-length-0000").sign(session_id)
    anonymous(site, f"{site.name}={forged}")


def test_mac_under_the_raw_key_does_not_verify(site: Site) -> None:
    """ASVS 5.0 9.1.1: the MAC key is derived per purpose, so a MAC some other component computes
    with the same application secret is not a session token."""
    _, token = owned(site)
    session_id = token.partition(".")[0]
    raw = hmac.new(KEY_NEW.encode(), session_id.encode(), hashlib.sha256).digest()
    mac = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    anonymous(site, f"{site.name}={session_id}.{mac}")


@pytest.mark.parametrize(
    "shape",
    [
        "{id}",  # no MAC at all (the "none algorithm" of a token without one)
        "{id}.",  # empty MAC
        ".{mac}",  # empty ID
        "{id}.{mac}.{mac}",  # an extra segment
        "{mac}.{id}",  # swapped
        "{id}.{short}",  # truncated MAC
        "{id}x.{mac}",  # padded ID
        "{id}\x00.{mac}",  # NUL inside
        "{id}.{mac}\x00",  # NUL after
        "{id}é.{mac}",  # non-ASCII
        "{id}.{mac}\u2028",  # a Unicode line separator
        "{id}%2E{mac}",  # percent-encoded dot
    ],
)
def test_malformed_tokens_give_a_fresh_session(site: Site, shape: str) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": every malformed shape is refused
    before any store lookup, without an error."""
    _, token = owned(site)
    session_id, _, mac = token.partition(".")
    value = shape.format(id=session_id, mac=mac, short=mac[:-2])
    anonymous(site, f"{site.name}={value}")
    assert site.signer.unsign(value) is None


def test_oversized_token_is_refused_before_any_work(site: Site) -> None:
    """ASVS 5.0 3.3.5 / cheat sheet "Manage Session ID as Any Other User Input": a huge cookie is
    refused by length, before hashing or parsing."""
    _, token = owned(site)
    assert len(token) < MAX_TOKEN_LENGTH
    anonymous(site, f"{site.name}={token}" + "A" * 100_000)
    assert site.signer.unsign("A" * (MAX_TOKEN_LENGTH + 1)) is None


def test_duplicated_cookie_is_ambiguous_and_refused(site: Site) -> None:
    """Cheat sheet "Considerations When Using Multiple Cookies": two session cookies (cookie
    tossing from a sibling subdomain) name no session, not even when both are valid."""
    _, mine = owned(site)
    _, other = owned(site)
    anonymous(site, f"{site.name}={mine}; {site.name}={other}")
    anonymous(site, f"{site.name}={mine}; {site.name}={mine}")
    session = site.request(
        [("cookie", f"{site.name}={mine}"), ("cookie", f"{site.name}={other}")]
    ).session
    assert session.is_new
    assert not session.is_authenticated


def test_unrelated_cookies_do_not_confuse_the_parser(site: Site) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": look-alike names never match."""
    _, token = owned(site)
    n = site.name
    header = f"x{n}={token}; {n}_={token}; {n.swapcase()}={token}; {n}.x={token}; {n[7:]}={token}"
    anonymous(site, header)
    session = site.request([("cookie", f"{header}; {site.name}={token}")]).session
    assert session.is_authenticated


def test_session_ids_are_256_bits_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASVS 4.0.3 3.2.2 / 3.2.4, ASVS 5.0 7.2.3 / 11.5.1, cheat sheet "Session ID Entropy": IDs are
    256 bits from the OS CSPRNG (``secrets``), base64url, never repeated."""
    assert ID_BYTES * 8 == 256
    ids = [new_session_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for session_id in ids[:100]:
        assert is_well_formed(session_id)
        assert len(session_id) == 43
        assert len(base64.urlsafe_b64decode(session_id + "=")) == 32
    # Every bit position is set in roughly half the IDs (a broken generator would not be).
    ones = collections.Counter()
    for session_id in ids:
        value = int.from_bytes(base64.urlsafe_b64decode(session_id + "="), "big")
        for bit in range(256):
            ones[bit] += (value >> bit) & 1
    assert all(800 < ones[bit] < 1200 for bit in range(256))
    # ...and they come from the secrets module, not from random.
    calls: list[int] = []

    def fake(nbytes: int) -> str:
        calls.append(nbytes)
        return "S" * 43

    monkeypatch.setattr(secrets, "token_urlsafe", fake)
    assert new_session_id() == "S" * 43
    assert calls == [32]


def test_secret_keys_must_be_long_and_never_print() -> None:
    """ASVS 5.0 11.2.3 (at least 128 bits of security) / 16.5.1: keys under 32 bytes are refused
    at construction; a Secret's repr shows no key."""
    with pytest.raises(ConfigurationError):
        Secret("short")
    with pytest.raises(ConfigurationError):
        Secret([KEY_NEW, "x" * 31])
    secret = Secret([KEY_OLD, KEY_NEW])
    for text in (repr(secret), str(secret), f"{secret}", repr(TokenSigner(secret))):
        assert KEY_OLD not in text
        assert KEY_NEW not in text


def test_key_rotation_keeps_everyone_logged_in(site: Site) -> None:
    """ASVS 5.0 11.2.2 (keys replaceable at any time) / itsdangerous key lists: a new key added in front of the old one signs
    new tokens while the old ones keep verifying, so a deploy that rotates keys logs no one out."""
    site.rekey([KEY_OLD])
    browser, old_token = owned(site)
    site.rekey([KEY_OLD, KEY_NEW])
    assert browser.visit().session.is_authenticated
    newcomer, new_token = owned(site)
    assert TokenSigner(KEY_NEW).unsign(new_token) is not None
    assert TokenSigner(KEY_OLD).unsign(new_token) is None
    # A session re-issued under the new key (rotation at login) survives dropping the old key.
    browser.visit(lambda s: s.login(Principal("alice")))
    assert browser.cookie != old_token
    site.rekey([KEY_NEW])
    assert browser.visit().session.is_authenticated
    assert newcomer.visit().session.is_authenticated


def test_a_removed_key_logs_its_tokens_out(site: Site) -> None:
    """ASVS 5.0 9.1.3: a key removed from the list (a leaked key) verifies nothing any more."""
    site.rekey([KEY_OLD])
    _, token = owned(site)
    site.rekey([KEY_NEW])
    anonymous(site, f"{site.name}={token}")


def test_a_valid_token_still_works(site: Site) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input", the control for every refusal
    above: the untouched token loads its session."""
    browser, _token = owned(site)
    browser.visit(write("k", "v"))
    session = site.request([("cookie", f"{site.name}={browser.cookie}")]).session
    assert session.is_authenticated
    assert session["k"] == "v"


def test_a_quoted_token_is_not_a_second_spelling(site: Site) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": a token has exactly one
    spelling; the RFC 6265 quoted form ``name="<token>"`` (which sessio never writes) is
    refused like any other altered token."""
    browser, _token = owned(site)
    assert site.request([site.cookie(browser.cookie or "")]).session.is_authenticated
    anonymous(site, f'{site.name}="{browser.cookie}"')
