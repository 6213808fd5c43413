"""Typed reads: turn plain session data back into dataclasses, pydantic or msgspec models."""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, TypeVar, cast

__all__ = ["convert"]

T = TypeVar("T")


def convert(value: Any, model: type[T]) -> T:
    """``value`` as a ``model``: already one, a pydantic model, a msgspec struct or a dataclass.

    Dataclasses are rebuilt field by field, nested dataclasses included, also inside
    ``X | None``, ``list``, ``set``, ``tuple`` and ``dict`` hints; pydantic and msgspec use their own validation (``model_validate`` /
    ``msgspec.convert``) and raise their own errors.
    """
    if isinstance(model, type) and isinstance(value, model):
        return value
    validate = getattr(model, "model_validate", None)
    if callable(validate):  # pydantic v2
        return cast(T, validate(value))
    if hasattr(model, "__struct_fields__"):  # msgspec.Struct
        import msgspec

        return msgspec.convert(value, model)
    if dataclasses.is_dataclass(model):
        return cast(T, _dataclass(value, model))
    raise TypeError(f"get_as() supports dataclasses, pydantic and msgspec models, not {model!r}")


def _dataclass(value: Any, model: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"cannot build {model.__qualname__} from {type(value).__name__}")
    module = sys.modules.get(model.__module__)
    hints = typing.get_type_hints(model, vars(module) if module else None)
    kwargs = {}
    for field in dataclasses.fields(model):
        if field.name in value:
            kwargs[field.name] = _coerce(value[field.name], hints.get(field.name))
    return model(**kwargs)


def _coerce(value: Any, hint: Any) -> Any:
    if hint is None:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _dataclass(value, hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        # ``Address | None``: None stays None, anything else is read as the one real option.
        options = [a for a in args if a is not type(None)]
        if value is None or len(options) != 1:
            return value
        return _coerce(value, options[0])
    if (
        origin in (list, set, frozenset, tuple)
        and args
        and isinstance(value, (list, tuple, set, frozenset))
    ):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_coerce(v, a) for v, a in zip(value, args, strict=False))
        return origin(_coerce(v, args[0]) for v in value)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _coerce(v, args[1]) for k, v in value.items()}
    return value
