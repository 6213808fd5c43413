"""Errors: one tree, stable codes, evidence, the right built-in bases, and an honest docstring."""

from __future__ import annotations

import builtins
import inspect
import re

import pytest

import sessio
from sessio import errors
from sessio.errors import MissingDependency, SessionError, require

ERRORS = [getattr(errors, name) for name in errors.__all__]


def test_every_error_is_a_session_error_with_its_own_stable_code() -> None:
    codes = [cls.code for cls in ERRORS]
    assert len(set(codes)) == len(codes)
    for cls in ERRORS:
        assert issubclass(cls, SessionError)
        assert re.fullmatch("[A-Z_]+", cls.code)
        assert 400 <= cls.status_code < 600
        assert cls.__doc__
        assert getattr(sessio, cls.__name__) is cls


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("ValueNotSerializable", TypeError),
        ("RecordCorrupt", ValueError),
        ("ConfigurationError", ValueError),
        ("MissingDependency", ImportError),
    ],
)
def test_errors_subclass_the_matching_builtin(name: str, builtin: type) -> None:
    assert issubclass(getattr(errors, name), builtin)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("SessionExpired", 401),
        ("SessionInvalid", 401),
        ("SessionNotFound", 404),
        ("TokenInvalid", 401),
        ("StoreUnavailable", 503),
        ("ConcurrencyLimitExceeded", 409),
        ("CSRFFailed", 403),
        ("AuthenticationRequired", 401),
        ("PermissionDenied", 403),
        ("ReauthenticationRequired", 401),
    ],
)
def test_http_statuses(name: str, status: int) -> None:
    assert getattr(errors, name).status_code == status


def test_an_error_carries_its_code_message_and_evidence() -> None:
    error = errors.ConcurrencyLimitExceeded("too many", principal="user:1", limit=3)
    assert error.code == "CONCURRENCY_LIMIT"
    assert error.message == "too many"
    assert error.evidence == {"principal": "user:1", "limit": 3}
    assert str(error) == "[CONCURRENCY_LIMIT] too many"
    assert error.to_dict() == {"error": "CONCURRENCY_LIMIT", "detail": "too many"}
    with pytest.raises(SessionError) as caught:
        raise error
    assert caught.value is error


def test_reauthentication_names_the_max_age_in_its_json() -> None:
    error = errors.ReauthenticationRequired("sign in again", max_age=299.7)
    assert error.to_dict() == {
        "error": "REAUTHENTICATION_REQUIRED",
        "detail": "sign in again",
        "max_age": 299,
    }
    assert error.evidence == {"max_age": 299.7}


def test_the_docstring_tree_matches_the_classes() -> None:
    doc = inspect.getdoc(errors) or ""
    drawn = dict(re.findall(r"── (\w+).*?\s([A-Z_]{6,})$", doc, re.MULTILINE))
    assert drawn == {cls.__name__: cls.code for cls in ERRORS if cls is not SessionError}
    also = dict(re.findall(r"── (\w+) \(also (\w+)\)", doc))
    assert also == {
        cls.__name__: base.__name__
        for cls in ERRORS
        if cls is not SessionError
        for base in cls.__bases__
        if base is not SessionError and base in vars(builtins).values()
    }


def test_require_imports_or_names_the_extra_that_fixes_it() -> None:
    assert require("json", "none").dumps([1]) == "[1]"
    with pytest.raises(MissingDependency) as info:
        require("sessio_no_such_module", "redis")
    assert "pip install 'sessio[redis]'" in str(info.value)
    assert info.value.evidence == {"module": "sessio_no_such_module", "extra": "redis"}
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)
