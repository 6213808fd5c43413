"""Who a session belongs to: an immutable principal with roles and attributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["Principal"]


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated party behind a session.

    ``id`` identifies it within its ``kind`` ("user", "service", "device"...); ``roles`` drive
    :func:`require_role`-style checks; ``attributes`` carry anything else worth keeping in the
    session (a display name, a tenant). Attribute values must be encodable by the session codec.
    """

    id: str
    kind: str = "user"
    roles: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __init__(
        self,
        id: str | int,
        kind: str = "user",
        roles: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        ident = str(id)
        if not ident:
            raise ConfigurationError("Principal id must not be empty")
        if not kind or ":" in kind:
            raise ConfigurationError(
                f"Principal kind must be a non-empty name without ':': {kind!r}"
            )
        if isinstance(roles, str):
            raise ConfigurationError("Principal roles must be an iterable of names, not one string")
        object.__setattr__(self, "id", ident)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "roles", frozenset(roles))
        object.__setattr__(self, "attributes", dict(attributes or {}))

    @property
    def key(self) -> str:
        """``"kind:id"``: the name a store's per-principal index files sessions under."""
        return f"{self.kind}:{self.id}"

    def has_role(self, *roles: str) -> bool:
        """Whether the principal holds every one of ``roles``."""
        return self.roles.issuperset(roles)

    def get_attribute(self, name: str, default: Any = None) -> Any:
        """One attribute, or ``default``."""
        return self.attributes.get(name, default)

    def to_data(self) -> dict[str, Any]:
        """Plain data for the codec."""
        return {
            "id": self.id,
            "kind": self.kind,
            "roles": sorted(self.roles),
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Principal:
        """The inverse of :meth:`to_data`."""
        return cls(
            data["id"], data.get("kind", "user"), data.get("roles", ()), data.get("attributes")
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.id, self.roles))
