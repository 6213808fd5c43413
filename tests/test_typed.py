"""Typed reads: ``get_as`` rebuilds dataclasses (nested), pydantic and msgspec models."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Optional

import msgspec
import pydantic
import pytest

from sessio.typed import convert

from .conftest import FakeClock
from .drive import MODES, Drive


@dataclasses.dataclass
class Address:
    city: str
    zip: str = "00000"


@dataclasses.dataclass
class Item:
    sku: str
    qty: int = 1
    added: dt.datetime | None = None


@dataclasses.dataclass
class Cart:
    items: list[Item]
    ship_to: Address | None = None
    bill_to: Optional[Address] = None  # noqa: UP045 - the spelling older code uses
    by_sku: dict[str, Item] = dataclasses.field(default_factory=dict)
    history: tuple[Item, ...] = ()
    pair: tuple[Address, int] | None = None
    tags: frozenset[str] = frozenset()


class PydanticAddress(pydantic.BaseModel):
    city: str


class PydanticUser(pydantic.BaseModel):
    name: str
    born: dt.date
    home: PydanticAddress


class MsgspecAddress(msgspec.Struct):
    city: str


class MsgspecUser(msgspec.Struct):
    name: str
    seen: dt.datetime
    home: MsgspecAddress


@pytest.fixture(params=MODES)
def drive(request: pytest.FixtureRequest, clock: FakeClock) -> Drive:
    return Drive(request.param, clock=clock)


async def test_nested_dataclasses_round_trip(drive: Drive) -> None:
    when = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    cart = Cart(
        items=[Item("a", 2, when), Item("b")],
        ship_to=Address("Paris", "75001"),
        by_sku={"a": Item("a", 2)},
        history=(Item("z"),),
        pair=(Address("Oslo"), 3),
        tags=frozenset({"gift"}),
    )
    _, token = await drive.stored(cart=cart)
    session = await drive.load(token)
    assert isinstance(session["cart"], dict)  # stored as plain data...
    assert session.get_as("cart", Cart) == cart  # ...and read back typed
    assert session.get_as("cart", Cart).items[0].added == when


def test_optional_fields_hold_none_or_the_model() -> None:
    assert convert({"items": [], "ship_to": None}, Cart).ship_to is None
    assert convert({"items": [], "bill_to": {"city": "Rome"}}, Cart).bill_to == Address("Rome")


def test_missing_fields_take_defaults_and_unknown_keys_are_ignored() -> None:
    assert convert({"sku": "a", "legacy": True}, Item) == Item("a")


async def test_pydantic_models(drive: Drive) -> None:
    user = PydanticUser(name="ada", born=dt.date(1815, 12, 10), home=PydanticAddress(city="London"))
    _, token = await drive.stored(user=user)
    assert (await drive.load(token)).get_as("user", PydanticUser) == user
    with pytest.raises(pydantic.ValidationError):
        convert({"name": "ada"}, PydanticUser)


async def test_msgspec_structs(drive: Drive) -> None:
    user = MsgspecUser("ada", dt.datetime(2026, 1, 1), MsgspecAddress("London"))
    _, token = await drive.stored(user=user)
    assert (await drive.load(token)).get_as("user", MsgspecUser) == user
    with pytest.raises(msgspec.ValidationError):
        convert({"name": "ada"}, MsgspecUser)


def test_get_as_returns_the_default_for_a_missing_key(clock: FakeClock) -> None:
    session = Drive("sync", clock=clock).manager.start()
    assert session.get_as("cart", Cart) is None
    fallback = Cart(items=[])
    assert session.get_as("cart", Cart, fallback) is fallback


def test_an_instance_is_returned_as_it_is() -> None:
    cart = Cart(items=[])
    assert convert(cart, Cart) is cart


def test_what_does_not_fit_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Cart"):
        convert([1, 2], Cart)
    with pytest.raises(TypeError, match="dataclasses, pydantic and msgspec"):
        convert("42", int)
