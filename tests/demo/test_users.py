"""The demo's accounts: scrypt hashes with per-user salts, no enumeration, a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sessio.demo.users import AccountError, ScryptParams, UserStore, verify_password
from sessio.errors import ConfigurationError

FAST = ScryptParams(n=2**10, r=8, p=1)


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.db", params=FAST)


def test_register_then_authenticate(users: UserStore) -> None:
    assert users.register("  Ada ", "correct horse") == "ada"
    assert users.authenticate("ADA", "correct horse") == "ada"
    assert users.authenticate("ada", "correct horsE") is None
    assert users.authenticate("nobody", "correct horse") is None


def test_only_salted_hashes_are_stored(users: UserStore, tmp_path: Path) -> None:
    users.register("ada", "same password")
    users.register("bob", "same password")
    rows = dict(
        sqlite3.connect(tmp_path / "users.db").execute("SELECT username, password FROM demo_users")
    )
    assert set(rows) == {"ada", "bob"}
    for encoded in rows.values():
        assert "same password" not in encoded
        scheme, n, r, p, _salt, _key = encoded.split("$")
        assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    # Per-user salt: equal passwords give different salts and different hashes.
    assert rows["ada"].split("$")[4] != rows["bob"].split("$")[4]
    assert rows["ada"].split("$")[5] != rows["bob"].split("$")[5]


def test_hashes_keep_their_own_cost_settings(tmp_path: Path) -> None:
    old = UserStore(tmp_path / "u.db", params=FAST)
    old.register("ada", "an old password")
    old.close()
    stronger = UserStore(tmp_path / "u.db", params=ScryptParams(n=2**11, r=8, p=1))
    assert stronger.authenticate("ada", "an old password") == "ada"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ab", "long enough", "3 to 32 characters"),
        ("-ada", "long enough", "starting with a letter or digit"),
        ("a" * 33, "long enough", "3 to 32 characters"),
        ("ada<script>", "long enough", "letters, digits"),
        ("ada", "short", "Passwords need 8 to 1024 characters; that one has 5."),
        ("ada", "x" * 1025, "Passwords need 8 to 1024 characters; that one has 1025."),
        ("ada", "x" * 2000, "Passwords need 8 to 1024 characters; that one has 2000."),
        ("ada", "long \ud800 enough", "valid Unicode text"),
    ],
)
def test_registration_is_validated(
    users: UserStore, username: str, password: str, message: str
) -> None:
    with pytest.raises(AccountError) as info:
        users.register(username, password)
    assert message in info.value.message


def test_the_password_bounds_are_inclusive_and_any_characters_count(users: UserStore) -> None:
    for i, password in enumerate(("x" * 8, "é" * 1024, "        ", "日本語のパスワード")):
        name = users.register(f"user{i}", password)
        assert users.authenticate(name, password) == name
    assert users.authenticate("user0", "x" * 1025) is None


def test_usernames_are_unique_whatever_the_case(users: UserStore) -> None:
    users.register("ada", "password one")
    with pytest.raises(AccountError, match="taken"):
        users.register("ADA", "password two")
    assert users.authenticate("ada", "password one") == "ada"


def test_verify_password_never_raises_on_garbage() -> None:
    good = FAST.hash("pw-pw-pw-pw")
    assert verify_password(good, "pw-pw-pw-pw")
    for bad in (
        "",
        "scrypt$1$2",
        "bcrypt$1024$8$1$AAAA$AAAA",
        good.replace("$", "$x", 1),
        good[:-4] + "!!!!",
    ):
        assert not verify_password(bad, "pw-pw-pw-pw")


@pytest.mark.parametrize("params", [{"n": 1000}, {"n": 1}, {"r": 0}, {"p": 0}, {"salt_bytes": 8}])
def test_weak_or_invalid_scrypt_settings_are_refused(params: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        ScryptParams(**params)
