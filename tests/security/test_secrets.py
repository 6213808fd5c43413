"""Secrets never leave through logs, events, errors or reprs."""

from __future__ import annotations

import pytest

from sessio import (
    ConcurrencyLimitExceeded,
    ConcurrencyPolicy,
    Policy,
    Principal,
    Session,
    SessionError,
    SessionEvent,
    SessionInvalid,
)
from sessio.integrations.csrf import CSRFOptions, check_request
from sessio.transports import Secret, TokenSigner, transports_for

from ..conftest import FakeClock
from .conftest import KEY_NEW, KEY_OLD, Browser, Site, header_view


class Witness:
    """Collects every secret a flow hands out, and every text that could leak one."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.secrets: set[str] = {KEY_OLD, KEY_NEW}
        self.texts: list[str] = []

    def saw(self, session: Session) -> None:
        self.secrets.add(session.id)
        self.secrets.add(self.site.sign(session.id))
        self.texts.extend([repr(session), str(session), repr(session.meta)])
        if not session.is_destroyed:
            self.secrets.add(session._csrf())  # derived from the ID, or salted, or kept

    def leaks(self) -> list[tuple[str, str]]:
        """``(secret, text)`` for every text that contains a secret."""
        return [(s, t) for t in self.texts for s in self.secrets if s and s in t]


def test_a_full_flow_leaks_no_id_or_token(
    clock: FakeClock, debug_log: pytest.LogCaptureFixture
) -> None:
    """ASVS 4.0.3 7.1.1 / ASVS 5.0 16.2.5 / 3.1.1 (4.0.3: no tokens in error messages): across
    visit, login, role change, concurrency eviction, logout and revocation, with every logger at
    DEBUG, no raw session ID, token, CSRF secret or signing key appears in a log record, an
    event, an error or a repr; events name sessions by a 12-digit hash."""
    policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
    site = Site(clock=clock, policy=policy, keys=[KEY_OLD, KEY_NEW])
    witness = Witness(site)

    def failing_listener(event: SessionEvent) -> None:
        raise RuntimeError(f"listener broke on {event.kind.value}")

    site.manager.events.subscribe(failing_listener)  # exercises sessio's only log call
    alice, bob = Browser(site), Browser(site)
    steps = [
        lambda s: s.__setitem__("cart", ["apple"]),
        lambda s: s.csrf_token,
        lambda s: s.login(Principal("alice", roles={"user"})),
        lambda s: s.login(Principal("alice", roles={"user", "admin"})),
        lambda s: s.flash("info", "hello"),
        lambda s: s.logout(),
        lambda s: s.login(Principal("alice")),
    ]
    for step in steps:
        response = alice.visit(step)
        witness.saw(response.session)
        witness.texts.append(repr(response.commit))
        clock.advance(1)
    witness.saw(bob.visit(lambda s: s.login(Principal("alice"))).session)  # evicts alice
    rejecting = Site(
        clock=clock,
        store=site.store,
        policy=Policy(
            concurrency=ConcurrencyPolicy(max_sessions_per_principal=1, on_limit="reject")
        ),
    )
    with pytest.raises(ConcurrencyLimitExceeded) as refused:
        rejecting.request((), lambda s: s.login(Principal("alice")))
    errors: list[SessionError] = [refused.value]
    destroyed = site.request((), lambda s: s.destroy()).session
    with pytest.raises(SessionInvalid) as invalid:
        destroyed["x"] = 1
    errors.append(invalid.value)
    for info in site.manager.sessions_of("alice"):
        witness.texts.append(repr(info))
        site.manager.revoke(info.key)
    for error in errors:
        witness.texts.extend([str(error), repr(error), repr(error.evidence), str(error.to_dict())])
    for event in site.events:
        witness.texts.extend([repr(event), str(event.as_dict())])
        assert event.session is None or len(event.session) == 12
    witness.texts.extend(
        [r.getMessage() + repr(r.args) + (r.exc_text or "") for r in debug_log.records]
    )
    witness.texts.append(debug_log.text)
    witness.texts.extend([repr(site.store), repr(site.manager), repr(site.signer)])
    witness.texts.extend(repr(t) for t in site.transports)
    assert any("listener" in r.getMessage() for r in debug_log.records)  # the log was captured
    assert len(witness.secrets) >= 16  # 2 keys + IDs, tokens and CSRF secrets of 8 requests
    assert witness.leaks() == []


def test_commit_repr_hides_the_token(site: Site) -> None:
    """ASVS 5.0 16.2.5: the commit an integration logs or shows in a traceback carries the raw
    ID for the transport, but its repr does not."""
    response = site.request((), lambda s: s.__setitem__("k", 1))
    assert response.commit.token == response.session.id
    assert response.session.id not in repr(response.commit)
    assert response.session.id not in str(response.commit)


def test_signing_keys_never_print() -> None:
    """ASVS 5.0 16.5.1 (no secret keys or tokens exposed): ``Secret`` shows ``'**********'``; the
    signer and the transports built on it show no key material."""
    secret = Secret([KEY_OLD, KEY_NEW])
    signer = TokenSigner(secret)
    texts = [repr(secret), str(secret), repr(signer), str(vars(signer)["secret"])]
    texts += [repr(t) for t in transports_for(Policy(), signer)]
    assert "Secret('**********')" in texts[0]
    for text in texts:
        assert KEY_OLD not in text
        assert KEY_NEW not in text


def test_csrf_refusals_do_not_echo_the_token(site: Site) -> None:
    """ASVS 4.0.3 3.1.1 (no tokens in error messages): a refusal names its reason, never the
    submitted or expected token."""
    session = site.request((), lambda s: s.csrf_token).session
    submitted = session.csrf_token
    for token in (submitted[:-1] + "A", "garbage", submitted):
        reason = check_request(
            method="POST",
            path="/",
            headers=header_view({"origin": "https://evil.example"}),
            scheme="https",
            host="app.example",
            session=session,
            submitted=token,
            options=CSRFOptions(),
        )
        assert reason is not None
        assert token not in reason
        assert session._csrf() not in reason
