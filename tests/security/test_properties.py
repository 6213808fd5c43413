"""Property tests of every parser that sees attacker input: they never raise, never accept a
forgery, and accept the real thing."""

from __future__ import annotations

import base64
import contextlib
import json
import string
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sessio import RecordCorrupt
from sessio.codec import default_codec
from sessio.csrf import mask_token, new_secret, verify_token
from sessio.ids import is_well_formed, new_session_id
from sessio.integrations.csrf import form_token
from sessio.transports import TokenSigner, parse_cookie_header

from .conftest import KEY_NEW, KEY_OLD

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNER = TokenSigner([KEY_OLD, KEY_NEW])
B64URL = string.ascii_letters + string.digits + "-_"


def other_char(char: str, offset: int) -> str:
    """Another base64url character than ``char`` (``offset`` in 1..63 picks which)."""
    start = B64URL.index(char) if char in B64URL else 0
    return B64URL[(start + offset) % 64]


# Text an attacker controls: every code point, biased towards the token alphabet and separators.
hostile = st.one_of(
    st.text(),
    st.text(alphabet=B64URL + ".=;\"' \t\x00", max_size=400),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
)


@SETTINGS
@given(hostile)
@example("")
@example(".")
@example("." * 300)
@example("a" * 43 + ".")
def test_unsign_never_raises_and_never_accepts_a_forgery(text: str) -> None:
    """ASVS 5.0 9.1.1 / cheat sheet "Manage Session ID as Any Other User Input": for any input,
    ``TokenSigner.unsign`` returns ``None`` unless the input is exactly what ``sign`` made."""
    result = SIGNER.unsign(text)
    if result is not None:
        assert SIGNER.sign(result) == text or TokenSigner(KEY_OLD).sign(result) == text


@SETTINGS
@given(st.data())
def test_any_change_to_a_signed_token_is_refused(data: st.DataObject) -> None:
    """ASVS 4.0.3 3.5.3 / ASVS 5.0 9.1.1: a real token round-trips; one character changed,
    inserted or removed anywhere gives ``None``."""
    raw = data.draw(st.binary(min_size=32, max_size=32))
    session_id = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    token = SIGNER.sign(session_id)
    assert SIGNER.unsign(token) == session_id
    index = data.draw(st.integers(0, len(token) - 1))
    char = other_char(token[index], data.draw(st.integers(1, 63)))
    for changed in (
        token[:index] + char + token[index + 1 :],
        token[:index] + char + token[index:],
        token[:index] + token[index + 1 :],
    ):
        assert SIGNER.unsign(changed) is None


@SETTINGS
@given(st.lists(hostile, max_size=4), st.sampled_from(["__Host-sessio", "sessio", "sid"]))
def test_parse_cookie_header_never_raises(headers: list[str], name: str) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": any Cookie header parses, and
    every value found came from a ``name=`` pair."""
    values = parse_cookie_header(headers, name)
    joined = ";".join(headers)
    for value in values:
        assert f"{name}={value}" in joined or f'{name}="{value}"' in joined


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.text(alphabet=B64URL + "_", min_size=1, max_size=12),
            st.text(alphabet=B64URL + ".", max_size=40),
        ),
        max_size=6,
    )
)
def test_parse_cookie_header_finds_exactly_our_cookie(others: list[tuple[str, str]]) -> None:
    """Cheat sheet "Considerations When Using Multiple Cookies": among any other cookies, ours
    is found once, with its exact value, whatever the other names look like."""
    name = "__Host-sessio"
    token = SIGNER.sign(new_session_id())
    pairs = [f"{k}={v}" for k, v in others if k != name] + [f"{name}={token}"]
    assert parse_cookie_header(["; ".join(pairs)], name) == [token]


@SETTINGS
@given(st.one_of(hostile, st.none(), st.integers(), st.binary()))
def test_verify_token_never_raises_and_refuses_garbage(token: Any) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": any submitted value is checked without an
    error and refused unless it was masked from the session's secret."""
    secret = new_secret()
    assert verify_token(secret, token) is False


@SETTINGS
@given(st.data())
def test_masked_csrf_tokens_verify_and_one_change_breaks_them(data: st.DataObject) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": every masked token verifies against its own
    secret only, and a token is accepted in exactly one spelling."""
    secret, other = new_secret(), new_secret()
    token = mask_token(secret)
    assert verify_token(secret, token)
    assert not verify_token(other, token)
    index = data.draw(st.integers(0, len(token) - 1))
    char = other_char(token[index], data.draw(st.integers(1, 63)))
    assert not verify_token(secret, token[:index] + char + token[index + 1 :])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "$uuid",
                    "$bytes",
                    "$set",
                    "$tuple",
                    "$datetime",
                    "$date",
                    "$time",
                    "$map",
                    "$dict",
                    "$decimal",
                    "$timedelta",
                    "$frozenset",
                    "a",
                    "$x",
                ]
            ),
            inner,
            max_size=2,
        )
    ),
    max_leaves=12,
)


@SETTINGS
@given(st.one_of(hostile, json_values.map(json.dumps), st.binary(max_size=200)))
@example('{"$uuid": 5}')
@example('{"$map": [[1, 2, 3]]}')
@example("[" * 50_000)
def test_codec_loads_raises_only_record_corrupt(text: str | bytes) -> None:
    """ASVS 5.0 16.5.3 (fail securely) / cheat sheet "Manage Session ID as Any Other User Input":
    whatever a store or a client-side cookie hands back, decoding either succeeds or raises
    ``RecordCorrupt`` (which the manager turns into a fresh session), never anything else."""
    with contextlib.suppress(RecordCorrupt):
        default_codec.loads(text)


@SETTINGS
@given(st.text(max_size=80), st.binary(max_size=400), st.text(max_size=20))
@example("multipart/form-data; boundary=€", b"", "csrf_token")
@example("multipart/form-data", b"--x\r\n\r\n", "csrf_token")
@example("application/x-www-form-urlencoded", b"csrf_token=%ff%fe", "csrf_token")
def test_form_token_never_raises(content_type: str, body: bytes, field: str) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": reading the token from any body, with any
    content type, returns a string or ``None`` and never raises."""
    result = form_token(content_type, body, field)
    assert result is None or isinstance(result, str)
    for mime in ("multipart/form-data; boundary=b", "application/x-www-form-urlencoded"):
        result = form_token(mime, body, field)
        assert result is None or isinstance(result, str)


@SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=5))
def test_form_token_finds_the_token_among_other_fields(fields: dict[str, str]) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": the token field is found in a urlencoded
    and in a multipart body, whatever the other fields hold."""
    token = mask_token(new_secret())
    fields = {k: v for k, v in fields.items() if k != "csrf_token"}
    fields["csrf_token"] = token
    body = urlencode(fields).encode()
    assert form_token("application/x-www-form-urlencoded", body, "csrf_token") == token
    parts = b"".join(
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (k.encode(), v.encode())
        for k, v in fields.items()
        if '"' not in k and "\r" not in k and "\n" not in k and "\\" not in k
    )
    multipart = parts + b"--BOUNDARY--\r\n"
    found = form_token("multipart/form-data; boundary=BOUNDARY", multipart, "csrf_token")
    assert found == token


@SETTINGS
@given(hostile)
def test_is_well_formed_accepts_only_the_issued_shape(text: str) -> None:
    """ASVS 4.0.3 3.2.2 / cheat sheet "Manage Session ID as Any Other User Input": only 43
    base64url characters pass the cheap check that runs before any store lookup."""
    if is_well_formed(text):
        assert len(text) == 43
        assert set(text) <= set(B64URL)
