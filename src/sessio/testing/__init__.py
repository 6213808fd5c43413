"""The store contract as a pytest base class: a store is done when its subclass passes.

Imported by test code only (it needs pytest and pytest-asyncio, the ``sessio[testing]`` extra);
sessio itself never imports it. ::

    import pytest
    from sessio.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            store = MyStore(tmp_path / "sessions")
            yield store
            await store.close()

Every test runs twice, through the store's coroutines and through their ``_sync`` twins. The
hooks :meth:`~StoreContract.corrupt`, :meth:`~StoreContract.native_ttl` and
:meth:`~StoreContract.atomic` say what the suite may ask of a store beyond the contract.
"""

from __future__ import annotations

from ._base import ContractBase
from ._deletions import DeletionContract
from ._limits import LimitContract
from ._manager import ManagerContract
from ._records import RecordContract
from ._revocation import RevocationContract
from ._support import LIVE, ManagerOps, ManualClock, Mode, StoreOps
from ._writes import WriteContract

__all__ = [
    "LIVE",
    "ContractBase",
    "DeletionContract",
    "LimitContract",
    "ManagerContract",
    "ManagerOps",
    "ManualClock",
    "Mode",
    "RecordContract",
    "RevocationContract",
    "StoreContract",
    "StoreOps",
    "WriteContract",
]


class StoreContract(
    WriteContract,
    LimitContract,
    RecordContract,
    DeletionContract,
    ManagerContract,
    RevocationContract,
):
    """Every test of the store contract. Subclass it as ``Test...`` and define ``store``.

    The parts are importable on their own (:class:`WriteContract`, :class:`LimitContract`,
    ...) for a store that is still growing, but only the whole of this class proves a store.
    """
