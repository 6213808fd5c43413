"""Fuzzing what arrives on the wire: cookie headers, signed tokens, the transports reading them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sessio import Policy
from sessio.ids import new_session_id
from sessio.transports import TokenSigner, parse_cookie_header, read_token, transports_for

from .strategies import FUZZ, hostile_text, total

KEY = "fuzzing-key-for-the-signed-transport-0001"
SIGNER = TokenSigner(KEY)
POLICY = Policy.web().replace(transports=("cookie", "header", "bearer"))
TRANSPORTS = transports_for(POLICY, SIGNER)
NAME = POLICY.cookie.name


@FUZZ
@given(st.lists(hostile_text, max_size=4), hostile_text)
def test_the_cookie_header_parser_is_total(headers: list[str], name: str) -> None:
    values = total(parse_cookie_header, headers, name)
    assert isinstance(values, list)
    assert len(values) <= sum(h.count(";") + 1 for h in headers)
    for value in values:
        assert isinstance(value, str)
        assert ";" not in value
        assert value == value.rstrip(" \t")  # one spelling: no trailing HTTP whitespace


@FUZZ
@given(hostile_text)
def test_the_signed_token_verifier_is_total(text: str) -> None:
    result = total(SIGNER.unsign, text)
    assert result is None or SIGNER.sign(result) == text  # type: ignore[arg-type]


@FUZZ
@given(st.data())
def test_the_signed_transport_reads_only_what_it_signed(data: st.DataObject) -> None:
    """Any headers, around or instead of a real token: the transports return a verified ID or
    nothing, and never raise."""
    real = SIGNER.sign(new_session_id())
    noise = data.draw(st.lists(hostile_text, max_size=3))
    mutated = data.draw(st.sampled_from([real, real[:-1], real + "=", f'"{real}"', real.upper()]))
    cookie = "; ".join([*noise, f"{NAME}={mutated}"])
    headers = {
        "cookie": [cookie],
        "authorization": [data.draw(st.sampled_from(["Bearer ", "bearer ", ""])) + mutated],
        "x-session-id": data.draw(st.lists(hostile_text, max_size=2)),
    }
    found = total(read_token, TRANSPORTS, lambda name: headers.get(name, []))
    assert isinstance(found, tuple)
    session_id, _ = found
    if session_id is not None:
        assert SIGNER.sign(session_id) == mutated
