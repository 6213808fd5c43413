"""The fixtures and hooks every part of the store contract stands on.

A store author subclasses :class:`~sessio.testing.StoreContract` and gives it a ``store``
fixture; the hooks here say what the suite may ask of that store beyond the contract.
"""

from __future__ import annotations

import pytest

from ..stores.base import Store
from ._support import ManagerOps, ManualClock, Mode, StoreOps

__all__ = ["ContractBase"]


class ContractBase:
    """Fixtures (``store``, ``ops``, ``managers``, ``clock``) and hooks of the contract."""

    #: Every test is a coroutine: run it under pytest-asyncio in its strict mode, too.
    pytestmark = [pytest.mark.asyncio]

    @pytest.fixture
    def store(self) -> Store:
        """The store under test: fresh and empty for every test. Override this fixture.

        It may be a plain or an async fixture (``yield`` the store, then release it); under
        pytest-asyncio's strict mode an async one is declared with ``pytest_asyncio.fixture``.
        """
        pytest.fail(f"{type(self).__name__} must define a `store` fixture", pytrace=False)

    @pytest.fixture(params=["async", "sync"])
    def ops(self, request: pytest.FixtureRequest, store: Store) -> StoreOps:
        """The store, reached through its coroutines or through their ``_sync`` twins."""
        mode: Mode = request.param
        return StoreOps(store, mode)

    @pytest.fixture
    def managers(self, ops: StoreOps) -> ManagerOps:
        """A session manager on the store, in the mode of ``ops``."""
        return ManagerOps(ops.store, ops.mode)

    @pytest.fixture
    def clock(self) -> ManualClock:
        """A clock the manager reads, which moves only when a test advances it."""
        return ManualClock()

    # -- hooks: override what your store does differently -------------------------------------

    async def corrupt(self, store: Store, key: str) -> None:
        """Write garbage under ``key`` the way only this store can (bytes no codec reads).

        The suite then proves that loading it yields a fresh session, never a crash. A store
        that cannot be reached around its own checks leaves this as is: the test is skipped.
        """
        pytest.skip(f"{type(self).__name__} does not define corrupt(store, key)")

    def native_ttl(self, store: Store) -> bool:
        """Whether the store expires records on its own clock (Redis), not on ``store.clock``.

        Such a store removes expired records by itself, so its ``cleanup()`` finds none.
        """
        return False

    def atomic(self, store: Store) -> bool:
        """Whether ``delete_principal_records`` is one atomic step against rotations.

        Every store should be; one that documents otherwise (Redis Cluster with keys in many
        slots) returns ``False`` and the races that prove atomicity are skipped.
        """
        return True
