"""The multi-factor service on its own, with a controlled clock: every code is computed for a given moment, and
the service is told that moment, so nothing depends on when the test runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from referral.errors import Conflict, Forbidden, NotFound
from referral.models import AuditEvent, MfaRecoveryCode, SignInAttempt, User, UserMfa, WebSession
from referral.services import mfa, web_auth
from referral.services.actor import Actor
from tests.support.web import user_with_password
from tests.support.world import Practice, World

KEY = mfa.sealing_key("unit-test-secret-key-" + "x" * 20)
T0 = datetime(2026, 12, 2, 15, 0, 0, tzinfo=UTC)  # the start of a 30-second step
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of RFC 6238's SHA-1 seed "12345678901234567890"


def at(moment: datetime) -> int:
    return int(moment.timestamp()) // 30


# -- codes and the sealed secret, no database --------------------------------------------------------------


@pytest.mark.parametrize(("unix_time", "expected"), [(59, "287082"), (1111111109, "081804"),
                                                     (1111111111, "050471"), (1234567890, "005924"),
                                                     (2000000000, "279037"), (20000000000, "353130")])
def test_codes_are_the_rfc_6238_sha1_test_vectors_in_six_digits(unix_time: int, expected: str):
    assert mfa.code_for(RFC_SECRET, unix_time // 30) == expected


def test_the_provisioning_uri_is_what_authenticator_apps_read():
    uri = mfa.provisioning_uri(RFC_SECRET, "dr.lee@riverside.example.com")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.digits, parsed.interval, parsed.issuer) == (RFC_SECRET, 6, 30, mfa.ISSUER)
    assert parsed.name == "dr.lee@riverside.example.com"
    assert "algorithm=SHA1" in uri
    assert parsed.at(1111111109) == "081804"


def test_the_secret_is_sealed_for_one_user_and_one_key():
    user_id = uuid.uuid4()
    sealed = mfa.seal(KEY, user_id, RFC_SECRET)
    assert RFC_SECRET not in sealed
    assert mfa.unseal(KEY, user_id, sealed) == RFC_SECRET
    assert mfa.seal(KEY, user_id, RFC_SECRET) != sealed  # a fresh nonce each time
    with pytest.raises(mfa.UnsealFailed):
        mfa.unseal(KEY, uuid.uuid4(), sealed)  # copied onto another user's row
    with pytest.raises(mfa.UnsealFailed):
        mfa.unseal(mfa.sealing_key("another-secret-key"), user_id, sealed)


def test_recovery_codes_are_ten_distinct_high_entropy_codes():
    codes = mfa.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(len(c) == 14 and c.count("-") == 2 for c in codes)


# -- with the database ----------------------------------------------------------------------------------------


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    with app.extensions["referral.sessionmaker"]() as session:
        yield session


def _user(db: Session, email: str) -> User:
    user = db.scalar(sa.select(User).where(User.email == email))
    assert user is not None
    return user


def _actor(user: User) -> Actor:
    return web_auth.actor_for(user, "203.0.113.7", "unit test")


def _new_user(db: Session, world: World, practice: Practice, role: str) -> User:
    db.commit()  # end this session's read transaction first: SQLite lets no one write while a reader holds it
    user = _user(db, user_with_password(world, practice, role))
    db.commit()
    return user


@pytest.fixture
def member(world: World, riverside: Practice, db: Session) -> User:
    return _new_user(db, world, riverside, "dentist")


def _enrol(db: Session, user: User, now: datetime = T0) -> tuple[str, list[str]]:
    enrolment = mfa.begin_enrolment(db, user, KEY, _actor(user))
    codes = mfa.confirm_enrolment(db, user, KEY, mfa.code_for(enrolment.secret, at(now)), _actor(user), now=now)
    return enrolment.secret, codes


def _half_session(db: Session, user: User) -> WebSession:
    new = web_auth.start_session(db, user, ip_address="203.0.113.7", user_agent="unit test")
    db.commit()
    assert new.row.mfa_pending == web_auth.PENDING_CODE
    return new.row


def _audit(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_enrolment_needs_a_right_code_and_keeps_only_the_sealed_secret_and_code_hashes(db: Session, member: User):
    enrolment = mfa.begin_enrolment(db, member, KEY, _actor(member))
    assert enrolment.secret in enrolment.uri
    # Reloading the page shows the same secret until it is confirmed.
    assert mfa.begin_enrolment(db, member, KEY, _actor(member)).secret == enrolment.secret
    wrong = mfa.code_for(enrolment.secret, at(T0) + 5)  # a real code, but of another time
    with pytest.raises(mfa.CodeRefused):
        mfa.confirm_enrolment(db, member, KEY, wrong, _actor(member), now=T0)
    assert not mfa.is_enabled(db, member.id)

    codes = mfa.confirm_enrolment(db, member, KEY, mfa.code_for(enrolment.secret, at(T0)), _actor(member), now=T0)

    assert mfa.is_enabled(db, member.id)
    row = db.get(UserMfa, member.id)
    assert row is not None
    assert enrolment.secret not in row.secret_sealed
    assert row.last_used_step == at(T0)
    stored = set(db.scalars(sa.select(MfaRecoveryCode.code_hash).where(MfaRecoveryCode.user_id == member.id)))
    assert len(stored) == 10
    assert not stored & set(codes)
    assert [e.outcome for e in _audit(db, "mfa.enrol")] == ["failure", "success"]
    assert _audit(db, "mfa.enrol")[0].details == {"reason": "wrong", "method": "totp"}
    # Once on, the secret is never handed out again.
    with pytest.raises(Conflict):
        mfa.begin_enrolment(db, member, KEY, _actor(member))


def test_a_code_works_in_its_window_and_never_twice(db: Session, member: User):
    secret, _ = _enrol(db, member)  # spends the code of T0's step
    later = T0 + timedelta(minutes=5)
    row = _half_session(db, member)
    # The code of five minutes ago is outside the window; the enrolment's code is no use either.
    for stale in (mfa.code_for(secret, at(T0)), mfa.code_for(secret, at(later) - 2)):
        with pytest.raises(mfa.CodeRefused) as refused:
            mfa.verify_sign_in(db, row, KEY, stale, _actor(member), now=later)
        assert refused.value.reason == "wrong"
    # The previous step's code is accepted (clock drift) ...
    assert mfa.verify_sign_in(db, row, KEY, mfa.code_for(secret, at(later) - 1), _actor(member), now=later) == "totp"
    assert row.mfa_pending is None
    assert row.expires_at == row.created_at + web_auth.SESSION_LIFETIME
    # ... and then neither it nor any code of an earlier step works again; the next step's does.
    again = _half_session(db, member)
    with pytest.raises(mfa.CodeRefused) as refused:
        mfa.verify_sign_in(db, again, KEY, mfa.code_for(secret, at(later) - 1), _actor(member), now=later)
    assert refused.value.reason == "reused"
    with pytest.raises(mfa.CodeRefused):
        mfa.verify_sign_in(db, again, KEY, mfa.code_for(secret, at(later) - 1), _actor(member),
                           now=later + timedelta(seconds=20))
    assert mfa.verify_sign_in(db, again, KEY, mfa.code_for(secret, at(later)), _actor(member),
                              now=later + timedelta(seconds=1)) == "totp"
    failures = [e.details for e in _audit(db, "mfa.verify") if e.outcome == "failure"]
    assert failures == [{"reason": "wrong", "method": "totp"}] * 2 + [{"reason": "reused", "method": "totp"}] * 2
    signed_in = [e.details for e in _audit(db, "session.sign_in")]
    assert signed_in == [{"mfa": "totp"}, {"mfa": "totp"}]


def test_a_recovery_code_works_once_whatever_its_spelling(db: Session, member: User):
    _, codes = _enrol(db, member)
    row = _half_session(db, member)

    assert mfa.verify_sign_in(db, row, KEY, f"  {codes[3].upper().replace('-', ' ')} ", _actor(member),
                              now=T0) == "recovery"

    assert mfa.recovery_codes_left(db, member.id) == 9
    again = _half_session(db, member)
    with pytest.raises(mfa.CodeRefused) as refused:
        mfa.verify_sign_in(db, again, KEY, codes[3], _actor(member), now=T0)
    assert refused.value.reason == "reused"
    with pytest.raises(mfa.CodeRefused) as refused:
        mfa.verify_sign_in(db, again, KEY, "abcd-efgh-jkmn", _actor(member), now=T0)
    assert refused.value.reason == "wrong"
    assert again.mfa_pending == web_auth.PENDING_CODE
    assert _audit(db, "session.sign_in")[0].details == {"mfa": "recovery", "recovery_codes_left": 9}


def test_wrong_codes_count_like_wrong_passwords(db: Session, member: User):
    secret, _ = _enrol(db, member)
    row = _half_session(db, member)
    for _ in range(web_auth.ACCOUNT_FAILURE_LIMIT):
        with pytest.raises(mfa.CodeRefused):
            mfa.verify_sign_in(db, row, KEY, "000000" if mfa.code_for(secret, at(T0)) != "000000" else "111111",
                               _actor(member), now=T0)
    with pytest.raises(web_auth.SignInThrottled):
        mfa.verify_sign_in(db, row, KEY, mfa.code_for(secret, at(T0) + 1), _actor(member), now=T0)
    assert row.mfa_pending == web_auth.PENDING_CODE
    assert _audit(db, "mfa.verify")[-1].outcome == "throttled"
    failed = db.scalar(sa.select(sa.func.count()).select_from(SignInAttempt).where(
        SignInAttempt.email == member.email, SignInAttempt.succeeded.is_(False)))
    assert failed == web_auth.ACCOUNT_FAILURE_LIMIT


def test_turning_it_off_needs_a_code_and_is_refused_where_required(db: Session, member: User):
    secret, _ = _enrol(db, member)
    with pytest.raises(Forbidden):
        mfa.disable(db, member, KEY, mfa.code_for(secret, at(T0) + 1), _actor(member), required=True, now=T0)
    with pytest.raises(mfa.CodeRefused):
        mfa.disable(db, member, KEY, mfa.code_for(secret, at(T0)), _actor(member), required=False, now=T0)
    assert mfa.is_enabled(db, member.id)

    mfa.disable(db, member, KEY, mfa.code_for(secret, at(T0) + 1), _actor(member), required=False, now=T0)

    assert not mfa.is_enabled(db, member.id)
    assert db.scalar(sa.select(sa.func.count()).select_from(MfaRecoveryCode)) == 0
    assert [e.outcome for e in _audit(db, "mfa.disable")] == ["failure", "success"]
    new = web_auth.start_session(db, member, ip_address=None, user_agent=None)
    assert new.row.mfa_pending is None


def test_where_required_a_user_without_mfa_must_enrol_and_enrolling_completes_the_session(
        db: Session, member: User):
    new = web_auth.start_session(db, member, ip_address=None, user_agent=None, mfa_required=True)
    db.commit()
    assert new.row.mfa_pending == web_auth.PENDING_ENROL
    assert new.row.expires_at - new.row.created_at == web_auth.PENDING_LIFETIME
    assert _audit(db, "session.password")[0].details == {"next_step": "enrol"}
    enrolment = mfa.begin_enrolment(db, member, KEY, _actor(member))

    mfa.confirm_enrolment(db, member, KEY, mfa.code_for(enrolment.secret, at(T0)), _actor(member),
                          web_session=new.row, now=T0)

    assert new.row.mfa_pending is None
    assert _audit(db, "session.sign_in")[0].details == {"mfa": "enrolled"}


def test_an_org_admin_resets_a_member_but_not_another_practices(db: Session, member: User, world: World,
                                                                riverside: Practice, hillside: Practice):
    _enrol(db, member)
    _half_session(db, member)
    own_admin = _new_user(db, world, riverside, "org_admin")
    other_admin = _new_user(db, world, hillside, "org_admin")
    billing = _new_user(db, world, riverside, "billing")

    with pytest.raises(NotFound):
        mfa.reset(db, _actor(other_admin), member.id)
    with pytest.raises(Forbidden):
        mfa.reset(db, _actor(own_admin), own_admin.id)
    with pytest.raises(Forbidden):
        mfa.reset(db, _actor(billing), member.id)
    assert mfa.is_enabled(db, member.id)

    user, ended = mfa.reset(db, _actor(own_admin), member.id)

    assert user.id == member.id
    assert ended == 1
    assert not mfa.is_enabled(db, member.id)
    event = _audit(db, "mfa.reset")[-1]
    assert (event.actor_user_id, event.object_id, event.details) == (own_admin.id, member.id,
                                                                     {"had_mfa": True, "sessions_ended": 1})
