"""The store contract over every store of the project, through the public kit (sessio.testing).

The suite itself lives in :mod:`sessio.testing`, so a third-party store passes the very tests
ours do. Here it runs over every backend of tests/stores/backends.py (the Redis Cluster runs in
tests/stores/test_redis_cluster.py, next to the cluster it starts) and over the small example
store of tests/stores/third_party.py, which stands for a store written outside the project.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sessio.stores import Store
from sessio.testing import StoreContract

from .backends import Backend, backend_params
from .third_party import DictStore, corrupt_dict_store


class TestEveryBackend(StoreContract):
    """Each test of the contract, on each backend, async and sync."""

    backend: Backend

    @pytest.fixture(params=backend_params())
    async def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
        self.backend = request.param  # the hooks below answer for the backend under test
        async with self.backend.open(tmp_path) as store:
            yield store

    async def corrupt(self, store: Store, key: str) -> None:
        await self.backend.corrupt(store, key)

    def native_ttl(self, store: Store) -> bool:
        return self.backend.native_ttl


class TestThirdPartyStore(StoreContract):
    """A store written only against the public base classes, as a third party would."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        with DictStore() as store:
            yield store

    async def corrupt(self, store: Store, key: str) -> None:
        assert isinstance(store, DictStore)
        corrupt_dict_store(store, key)
