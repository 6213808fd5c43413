"""Who is using a session: the client's IP network and user-agent family, compared across requests.

A session that moves to another network (``/24`` of IPv4, ``/64`` of IPv6 by default) or to
another browser family (name and major version) may have been copied to another machine.
:func:`changes` reports what moved, as coarse values only (a network, a family), so an event
carries evidence without a raw address's full detail or any session ID.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["MAX_AGENT", "agent_family", "changes", "network"]

#: The longest user agent read (the manager also stores at most this much).
MAX_AGENT = 512

# Checked in order: Edge and Opera announce themselves beside "Chrome", Chrome beside "Safari".
_FAMILIES = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d{1,6})")),
    ("Opera", re.compile(r"\bOPR/(\d{1,6})")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d{1,6})")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/(\d{1,6})")),
    ("Safari", re.compile(r"\bVersion/(\d{1,6})[^ ]* (?:Mobile/\S+ )?Safari/")),
)
# Anything else: its first product token ("curl/8.5.0" -> "curl 8").
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,31})/(\d{1,6})")


def agent_family(user_agent: str | None) -> str | None:
    """``"Firefox 126"``: a browser's name and major version, or ``None`` when unknown.

    Bounded: only the first :data:`MAX_AGENT` characters are read, by patterns with bounded
    repeats, so a hostile header costs linear time in at most that many characters.
    """
    if not user_agent:
        return None
    text = user_agent[:MAX_AGENT]
    for name, pattern in _FAMILIES:
        found = pattern.search(text)
        if found is not None:
            return f"{name} {int(found.group(1))}"
    found = _PRODUCT.match(text)
    if found is not None:
        return f"{found.group(1)} {int(found.group(2))}"
    return "other"


def network(ip: str | None, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    """The network ``ip`` lies in (``"203.0.113.0/24"``), or ``None`` for what is no address."""
    if not ip or len(ip) > 64:
        return None
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:203.0.113.7 is the IPv4 client it names
    prefix = ipv4_prefix if address.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def changes(
    old_ip: str | None,
    old_agent: str | None,
    new_ip: str | None,
    new_agent: str | None,
    *,
    ipv4_prefix: int,
    ipv6_prefix: int,
) -> dict[str, tuple[str, str]]:
    """What moved between the recorded client and this request's: ``{"network": (old, new),
    "user_agent": (old family, new family)}``, each only when both sides are known and differ."""
    moved: dict[str, tuple[str, str]] = {}
    if new_ip is not None and old_ip is not None and new_ip != old_ip:
        before = network(old_ip, ipv4_prefix, ipv6_prefix)
        after = network(new_ip, ipv4_prefix, ipv6_prefix)
        if before is not None and after is not None and before != after:
            moved["network"] = (before, after)
    if new_agent is not None and old_agent is not None and new_agent[:MAX_AGENT] != old_agent:
        before, after = agent_family(old_agent), agent_family(new_agent)
        if before is not None and after is not None and before != after:
            moved["user_agent"] = (before, after)
    return moved
