"""Fuzzing the CSRF form scan: any body, fed whole or in chunks, is a token or none."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sessio.integrations.csrf import FormScan, form_token

from .strategies import FUZZ, hostile_bytes

PIECES = st.sampled_from(
    [
        b"--B",
        b"--B--",
        b"\r\n",
        b"\r\n\r\n",
        b'Content-Disposition: form-data; name="csrf_token"',
        b"Content-Disposition: form-data; name=csrf_token",
        b"Content-Disposition: form-data; name*=utf-8''csrf%5Ftoken",
        b"Content-Type: text/plain",
        b"name=",
        b'"',
        b"\\",
        b"(",
        b";",
        b":",
        b"token-value",
        b"\x00",
        b"\xff",
        b"csrf_token=",
        b"&",
        b"%",
        b"+",
    ]
)
bodies = st.one_of(
    st.lists(st.one_of(PIECES, hostile_bytes), max_size=40).map(b"".join),
    hostile_bytes,
)
CONTENT_TYPES = st.sampled_from(
    [
        "multipart/form-data; boundary=B",
        'multipart/form-data; boundary="B"',
        "multipart/form-data; BOUNDARY=B; charset=utf-8",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "text/plain",
        "",
    ]
)


@FUZZ
@given(CONTENT_TYPES, bodies, st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_the_form_scan_is_total_and_chunking_changes_nothing(
    content_type: str, body: bytes, sizes: list[int]
) -> None:
    whole = form_token(content_type, body, "csrf_token")  # raises nothing at all
    assert whole is None or isinstance(whole, str)
    scan = FormScan(content_type, "csrf_token")
    start, turn = 0, 0
    while start < len(body) and not scan.feed(body[start : start + sizes[turn % len(sizes)]]):
        start += sizes[turn % len(sizes)]
        turn += 1
    assert scan.finish() == whole
