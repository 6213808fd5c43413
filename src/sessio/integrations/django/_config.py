"""The ``SESSIO_*`` Django settings, read and checked: a bad one raises ImproperlyConfigured naming it.

==========================  ===========================================================================
``SESSIO_STORE``            required: a store URL (``"sqlite:///sessions.db"``, ``"redis://host/0"``,
                            ``"postgresql://user@host/db"``...) or a server-side sessio ``Store``
``SESSIO_STORE_OPTIONS``    keyword arguments for the store a URL names (``{"prefix": "app:"}``)
``SESSIO_POLICY``           a :class:`~sessio.Policy`: its ``ttl`` (an absolute lifetime Django lacks),
                            ``concurrency``, ``rotate_on_login``, ``refresh_interval``, ``capture_ip``
                            and ``capture_user_agent`` apply; the idle expiry stays Django's
==========================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ...errors import ConfigurationError, MissingDependency
from ...policy import Policy
from ...stores import Store, store_from_url

__all__ = ["Config", "read_settings"]

#: The settings this integration reads; a change to any of them rebuilds its store.
SETTING_NAMES = frozenset({"SESSIO_STORE", "SESSIO_STORE_OPTIONS", "SESSIO_POLICY"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """What the settings name: the store the sessions live in and the policy they follow."""

    store: Store
    policy: Policy


def read_settings() -> Config:
    """The :class:`Config` the current Django settings describe (this builds the store)."""
    return Config(store=_store(), policy=_policy())


def _store() -> Store:
    target = getattr(settings, "SESSIO_STORE", None)
    options = getattr(settings, "SESSIO_STORE_OPTIONS", None) or {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ImproperlyConfigured(
            f"SESSIO_STORE_OPTIONS must be a dict of store arguments, got {type(options).__name__}"
        )
    if target is None:
        raise ImproperlyConfigured(
            "SESSIO_STORE is required with SESSION_ENGINE = 'sessio.integrations.django': "
            "a store URL such as 'sqlite:///sessions.db', 'redis://127.0.0.1:6379/0' or "
            "'postgresql://user@host/db', or a sessio Store instance"
        )
    if isinstance(target, Store):
        if options:
            raise ImproperlyConfigured(
                "SESSIO_STORE_OPTIONS applies to a store URL; pass the options to the Store "
                "you built instead"
            )
        return target
    if not isinstance(target, str):
        raise ImproperlyConfigured(
            "SESSIO_STORE must be a store URL or a server-side sessio Store (Django's middleware "
            f"keeps the session ID in its cookie, so a client-side store cannot serve), "
            f"got {type(target).__name__}"
        )
    try:
        return store_from_url(target, **_plain(options))
    except (ConfigurationError, MissingDependency) as exc:
        # (store_from_url reports an option the store does not take as a ConfigurationError)
        named = "SESSIO_STORE with SESSIO_STORE_OPTIONS" if options else "SESSIO_STORE"
        raise ImproperlyConfigured(f"{named}: {exc.message}") from exc
    except TypeError as exc:  # an option the store's constructor does not take
        raise ImproperlyConfigured(f"SESSIO_STORE_OPTIONS: {exc}") from exc


def _policy() -> Policy:
    policy = getattr(settings, "SESSIO_POLICY", None)
    if policy is None:
        return Policy(ttl=None)  # Django sessions have no absolute lifetime of their own
    if not isinstance(policy, Policy):
        raise ImproperlyConfigured(
            f"SESSIO_POLICY must be a sessio.Policy, got {type(policy).__name__}"
        )
    return policy


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    return dict(options)
