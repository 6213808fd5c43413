"""A client cannot choose the address or origin sessio records and checks, even behind a proxy."""

from __future__ import annotations

from sessio.integrations.wsgi import client_ip


def test_a_client_cannot_forge_its_address_through_x_forwarded_for() -> None:
    """ASVS 5.0 16.3.x, cheat sheet "Binding the Session ID to Other User Properties": the
    address kept in session metadata is the one our own proxy appended, never a client-written
    entry to its left."""
    forged = {
        "REMOTE_ADDR": "10.0.0.2",  # the proxy
        "HTTP_X_FORWARDED_FOR": "203.0.113.66, 198.51.100.7",  # client-forged, then the proxy's
    }
    assert client_ip(forged, trust_forwarded=True) == "198.51.100.7"
    assert client_ip(forged) == "10.0.0.2"  # not trusted unless asked
    garbage = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, <script>"}
    assert client_ip(garbage, trust_forwarded=True) == "10.0.0.2"
