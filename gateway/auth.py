"""Identity: users with argon2 password hashes, short-lived JWT bearer tokens, roles + scopes."""
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from argon2 import PasswordHasher
from eventlet import tpool
from argon2.exceptions import InvalidHashError, VerificationError
from datetime import datetime, timedelta, timezone
from sqlalchemy.orm import Session

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, MetaData, Table, Text, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB

from marshmallow import fields

from services.common.errors import Conflict, FupinError, NotFound, ValidationFailed
from services.common.validation import CONTROL_CHARACTERS

ROLES = ("admin", "leading_group", "township", "department", "unit", "cadre", "credit_union", "inspector",
         "auditor")
# The scope key each scoped role must carry (API.md "Identity and roles").
SCOPE_KEYS = {"township": "township_id", "department": "department", "unit": "unit_id", "cadre": "cadre_id"}
# 三权分立: the admin manages users and roles but may not create, read the audit as, or reset an
# auditor; auditors come from FUPIN_AUDITOR_PASSWORD (the county's security officer sets it).
ADMIN_MAY_CREATE = tuple(role for role in ROLES if role != "auditor")
# Published in README.md for a laptop: refused as the first accounts' passwords outside development.
LOCAL_DEFAULT_ADMIN_PASSWORD = "fupin-admin"
LOCAL_DEFAULTS = {"admin": LOCAL_DEFAULT_ADMIN_PASSWORD, "auditor": "fupin-auditor"}

metadata = MetaData()
users = Table(
    "users", metadata,
    Column("user_id", Text, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("scope", JSONB, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("locked_until", DateTime(timezone=True)),
    Column("failures_reset_at", DateTime(timezone=True)),
    Column("tokens_valid_after", Float),
    Column("password_changed_at", DateTime(timezone=True)),
)
login_failures = Table(
    "login_failures", metadata,
    Column("failure_id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("username", Text, nullable=False),
    Column("client_address", Text, nullable=False),
    Index("ix_login_failures_username", "username", "at"),
    Index("ix_login_failures_address", "client_address", "at"),
)
password_history = Table(
    "password_history", metadata,
    Column("entry_id", BigInteger, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_password_history_user", "user_id", "entry_id"),
)
revoked_tokens = Table(
    "revoked_tokens", metadata,
    Column("jti", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)



class _HasherOffTheHub:
    """argon2 costs ~0.2 s of CPU per hash or verify, by design. On the event loop's thread that
    stops every other request of the gateway meanwhile (a county creating its users, people
    signing in at 8:00); in eventlet's thread pool argon2 releases the GIL, the loop keeps
    serving and two hashes run on two cores."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher

    def hash(self, password: str) -> str:
        return tpool.execute(self._hasher.hash, password)

    def verify(self, password_hash: str, password: str) -> bool:
        return tpool.execute(self._hasher.verify, password_hash, password)


_hasher = _HasherOffTheHub(PasswordHasher())


class Unauthorized(FupinError):
    code = "unauthorized"
    http_status = 401


class AccountLocked(FupinError):
    """Too many wrong passwords: the account is locked until `locked_until` (等保 登录失败处理)."""

    code = "account_locked"
    http_status = 423


class TooManyAttempts(FupinError):
    """Too many failed sign-ins from one client address; `retry_after` seconds."""

    code = "too_many_attempts"
    http_status = 429


@dataclass(frozen=True)
class SecurityRules:
    """The county's login and password rules: gateway config.yaml, every key optional."""

    max_failures: int = 5               # wrong passwords for one account ...
    failure_window_seconds: int = 900   # ... within 15 minutes lock it ...
    lock_seconds: int = 1800            # ... for 30 minutes
    address_max_failures: int = 30      # failed sign-ins from one client address ...
    address_window_seconds: int = 600   # ... within 10 minutes: 429 until the oldest leaves the window
    password_min_length: int = 10
    password_min_classes: int = 3       # of: lower-case, upper-case, digits, other characters
    password_history: int = 5           # a new password may not be any of the last 5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        values = {}
        for name in cls.__dataclass_fields__:
            raw = config.get(f"LOGIN_{name.upper()}" if not name.startswith("password") else name.upper())
            if raw not in (None, ""):
                values[name] = int(raw)
        return cls(**values)


def password_problems(password: str, rules: Any) -> Any:
    """What the password policy has against `password` (an empty list when it passes)."""
    password = password or ""
    problems = []
    if len(password) < rules.password_min_length:
        problems.append(f"at least {rules.password_min_length} characters")
    classes = sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))
    if classes < rules.password_min_classes:
        problems.append(f"at least {rules.password_min_classes} of: lower-case letters, upper-case letters, "
                        "digits, other characters")
    return problems


# The classes as ASCII, for the document's pattern: a password made of these passes the
# policy's Unicode-aware count above (an ASCII letter is lower- or upper-case, ...).
ASCII_CLASSES = ("[a-z]", "[A-Z]", "[0-9]", r"[ -/:-@\[-`{-~]")


def password_pattern(rules: Any) -> str:
    """A regular expression (Python and ECMA 262 alike) that only passwords meeting the policy
    match: `password_min_length` characters with `password_min_classes` of the four classes."""
    choices = "|".join("".join(rf"(?=[\s\S]*{cls})" for cls in combination)
                       for combination in itertools.combinations(ASCII_CLASSES, rules.password_min_classes))
    return rf"^(?:{choices})[^{CONTROL_CHARACTERS}]{{{rules.password_min_length},}}$"


class NewPassword(fields.String):
    """A password being set: check_password_policy decides (with the deployment's rules); the
    OpenAPI document states the same rules as a pattern (`openapi_for`)."""

    def openapi_for(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"pattern": password_pattern(SecurityRules.from_config(config)), "description": (
            "the password policy: at least {0.password_min_length} characters, {0.password_min_classes} of lower-case, "
            "upper-case, digits, other characters".format(SecurityRules.from_config(config)))}


def check_password_policy(password: str, rules: Any, field_name: str = "password") -> None:
    problems = password_problems(password, rules)
    if problems:
        raise ValidationFailed("the password does not meet the password policy", {field_name: problems})


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: str
    scope: dict = field(default_factory=dict)
    jti: str | None = None
    issued_at: float | None = None
    expires_at: int | None = None

    def as_actor(self) -> Any:
        return {"id": self.user_id, "username": self.username, "role": self.role}


def signing_key(config: Mapping[str, Any]) -> Any:
    secret = config.get("JWT_SECRET") or ""
    if not secret:
        if config.get("ENVIRONMENT", "development") != "development":
            raise RuntimeError("FUPIN_JWT_SECRET must be set outside development")
        secret = "development-only-signing-key"  # so a laptop runs; refused in production above
    return secret


def check_scope(role: str, scope: Any) -> Any:
    if role not in ROLES:
        raise ValidationFailed("unknown role", {"role": [f"must be one of {', '.join(ROLES)}"]})
    scope = scope or {}
    key = SCOPE_KEYS.get(role)
    if key and not scope.get(key):
        raise ValidationFailed(f"a {role} user needs scope.{key}", {f"scope.{key}": ["required for this role"]})
    return {key: scope[key]} if key else {}


def create_user(session: Session, username: str, password: str, role: str, scope: Any = None, rules: Any = None) -> Any:
    """`rules=None` skips the password policy (only for the local default admin in development)."""
    scope = check_scope(role, scope)
    if rules is not None:
        check_password_policy(password, rules)
    elif len(password or "") < 8:
        raise ValidationFailed("password too short", {"password": ["at least 8 characters"]})
    exists = session.execute(select(users.c.user_id).where(users.c.username == username)).first()
    if exists:
        raise Conflict("a user with this username exists", {"username": username})
    user_id = str(uuid.uuid4())
    password_hash = _hasher.hash(password)
    session.execute(users.insert().values(
        user_id=user_id, username=username, password_hash=password_hash,
        role=role, scope=scope, active=True, password_changed_at=_now(),
    ))
    session.execute(password_history.insert().values(user_id=user_id, password_hash=password_hash))
    return {"user_id": user_id, "username": username, "role": role, "scope": scope}


def _now() -> Any:
    return datetime.now(timezone.utc)


def ensure_first_account(session: Session, username: str, role: str, password: str, config: Mapping[str, Any]) -> Any:
    """Create `admin` (from FUPIN_ADMIN_PASSWORD) or `auditor` (FUPIN_AUDITOR_PASSWORD) once; a
    later change of the variable does nothing. Outside development refuse to start (RuntimeError)
    while the password is the published local default or breaks the policy, whether the account
    is about to be created or already exists with the default."""
    rules = SecurityRules.from_config(config)
    production = config.get("ENVIRONMENT", "development") != "development"
    row = session.execute(select(users).where(users.c.username == username)).first()
    if production:
        if row is not None:
            try:
                if _hasher.verify(row.password_hash, LOCAL_DEFAULTS[username]):
                    raise RuntimeError(f"the {username} account still has the published local default password; "
                                       "change it (POST /api/v1/auth/password) before running outside development")
            except (VerificationError, InvalidHashError):
                pass
        elif password:
            if password in LOCAL_DEFAULTS.values():
                raise RuntimeError(f"FUPIN_{username.upper()}_PASSWORD is the published local default; "
                                   "set your own before running outside development")
            problems = password_problems(password, rules)
            if problems:
                raise RuntimeError(f"FUPIN_{username.upper()}_PASSWORD breaks the password policy: "
                                   + "; ".join(problems))
    if row is not None or not password:
        return False
    create_user(session, username, password, role, rules=rules if production else None)
    return True


def ensure_first_admin(session: Session, password: str, config: Mapping[str, Any] | None = None) -> Any:
    return ensure_first_account(session, "admin", "admin", password, config or {})


def _audit_event(username: str, client_address: Any, status: int, resource: Any, user: Any = None) -> Any:
    return {"at": _now(), "actor_id": user.user_id if user is not None else "-", "actor_username": username,
            "actor_role": user.role if user is not None else "anonymous", "method": "POST",
            "path": "/api/v1/auth/token", "status": status, "idempotency_key": None,
            "correlation_id": str(uuid.uuid4()), "resource": {**resource, "client_address": client_address}}


def authenticate(session: Session, username: str, password: str, client_address: str = "unknown",
                 config: Mapping[str, Any] | None = None, audit: Any = None) -> Principal:
    """Check the password with 等保's login-failure handling; commit the session afterwards
    whatever happens (the failures and locks must stay). `audit(rows)` writes audit rows in this
    session's transaction: failed sign-ins, locks and expired locks."""
    from .audit import append_audit

    rules = SecurityRules.from_config(config or {})
    now = _now()
    write = audit or (lambda rows: append_audit(session.connection(), rows))
    window_start = now - timedelta(seconds=rules.address_window_seconds)
    address_failures = session.execute(
        select(func.count(), func.min(login_failures.c.at))
        .where(login_failures.c.client_address == client_address, login_failures.c.at >= window_start)).one()
    if address_failures[0] >= rules.address_max_failures:
        retry = max(1, int((address_failures[1] - window_start).total_seconds()) + 1)
        raise TooManyAttempts(f"too many failed sign-ins from this address; try again in {retry} s",
                              {"retry_after": retry, "client_address": client_address})
    row = session.execute(select(users).where(users.c.username == username, users.c.active.is_(True))
                          .with_for_update()).first()
    if row is not None and row.locked_until is not None:
        if row.locked_until > now:
            raise AccountLocked("the account is locked after too many wrong passwords; try again later or ask "
                                "the administrator to unlock it",
                                {"locked_until": row.locked_until.isoformat(), "username": username,
                                 "retry_after": max(1, int((row.locked_until - now).total_seconds()) + 1)})
        session.execute(update(users).where(users.c.user_id == row.user_id)
                        .values(locked_until=None, failures_reset_at=now))
        write([_audit_event(username, client_address, 200, {"event": "account_unlocked", "reason": "lock expired",
                                                             "user_id": row.user_id}, row)])
        row = session.execute(select(users).where(users.c.user_id == row.user_id)).first()
    if row is None:
        _hasher.hash(password or "")  # same cost whether or not the user exists
        ok = False
    else:
        try:
            ok = _hasher.verify(row.password_hash, password or "")
        except (VerificationError, InvalidHashError):
            ok = False
    if ok and row is not None:
        session.execute(update(users).where(users.c.user_id == row.user_id).values(failures_reset_at=now))
        write([_audit_event(username, client_address, 200, {"event": "login_succeeded"}, row)])
        # failures older than both windows count for nothing any more (the audit trail keeps them)
        keep = max(rules.failure_window_seconds, rules.address_window_seconds)
        session.execute(delete(login_failures).where(login_failures.c.at < now - timedelta(seconds=keep)))
        return Principal(row.user_id, row.username, row.role, row.scope or {})
    session.execute(login_failures.insert().values(at=now, username=username, client_address=client_address))
    events = [_audit_event(username, client_address, 401, {"event": "login_failed"}, row)]
    if row is not None:
        since = now - timedelta(seconds=rules.failure_window_seconds)
        if row.failures_reset_at is not None and row.failures_reset_at > since:
            since = row.failures_reset_at
        failures = session.execute(select(func.count()).where(
            login_failures.c.username == username, login_failures.c.at > since)).scalar()
        if failures >= rules.max_failures:
            locked_until = now + timedelta(seconds=rules.lock_seconds)
            session.execute(update(users).where(users.c.user_id == row.user_id)
                            .values(locked_until=locked_until, failures_reset_at=now))
            events.append(_audit_event(username, client_address, 423, {
                "event": "account_locked", "user_id": row.user_id, "failures": failures,
                "window_seconds": rules.failure_window_seconds, "locked_until": locked_until.isoformat()}, row))
            write(events)
            raise AccountLocked(f"{failures} wrong passwords: the account is locked for {rules.lock_seconds // 60} "
                                "minutes", {"locked_until": locked_until.isoformat(), "username": username,
                                            "retry_after": rules.lock_seconds})
    write(events)
    raise Unauthorized("wrong username or password")


def unlock(session: Session, user_id: str) -> Any:
    row = session.execute(select(users).where(users.c.user_id == user_id)).first()
    if row is None:
        raise NotFound(f"no user {user_id}", {"user_id": user_id})
    session.execute(update(users).where(users.c.user_id == user_id).values(locked_until=None, failures_reset_at=_now()))
    return {"user_id": user_id, "username": row.username, "was_locked_until":
            row.locked_until.isoformat() if row.locked_until else None}


def change_password(session: Session, principal: Principal, current: Any, new: Any, rules: Any) -> Any:
    """Check the current password, the policy and the last `password_history` passwords; all
    tokens issued before now stop working (the caller gets a new one)."""
    row = session.execute(select(users).where(users.c.user_id == principal.user_id).with_for_update()).first()
    if row is None:
        raise Unauthorized("the account no longer exists")
    try:
        _hasher.verify(row.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise ValidationFailed("the current password is wrong", {"old_password": ["wrong password"]}) from None
    check_password_policy(new, rules, "new_password")
    recent = session.execute(select(password_history.c.password_hash).where(password_history.c.user_id == row.user_id)
                             .order_by(password_history.c.entry_id.desc()).limit(rules.password_history)).scalars()
    for old in [row.password_hash, *recent]:
        try:
            if _hasher.verify(old, new):
                raise ValidationFailed("the new password was used recently", {
                    "new_password": [f"must differ from your last {rules.password_history} passwords"]})
        except (VerificationError, InvalidHashError):
            continue
    new_hash = _hasher.hash(new)
    now = _now()
    session.execute(update(users).where(users.c.user_id == row.user_id).values(
        password_hash=new_hash, password_changed_at=now, tokens_valid_after=time.time()))
    session.execute(password_history.insert().values(user_id=row.user_id, password_hash=new_hash, set_at=now))
    return Principal(row.user_id, row.username, row.role, row.scope or {})


def revoke(session: Session, principal: Principal) -> None:
    session.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < _now()))
    session.execute(revoked_tokens.insert().values(
        jti=principal.jti, user_id=principal.user_id,
        expires_at=datetime.fromtimestamp(principal.expires_at or time.time(), timezone.utc)))


# The liveness of a token, checked on the gateway's database, is kept for a moment: that check was
# a fifth of the gateway's CPU under load (pool checkout, query, return), for an answer that
# changes only on logout or a password change. This process forgets a user's tokens the moment
# either is committed here; another gateway replica sees it within TOKEN_CHECK_SECONDS.
DEFAULT_TOKEN_CHECK_SECONDS = 1.0
_live_tokens: dict[str, tuple[float, str]] = {}  # jti -> (checked at, monotonic; user_id)


def forget_live_tokens(user_id: str) -> None:
    """Check this user's tokens on the database again from the next request on."""
    for jti, (_, owner) in list(_live_tokens.items()):
        if owner == user_id:
            _live_tokens.pop(jti, None)


def ensure_token_live_kept(engine: Any, principal: Principal, config: Mapping[str, Any]) -> None:
    """`ensure_token_live`, asked of the database at most once per TOKEN_CHECK_SECONDS per token."""
    keep = float(config.get("TOKEN_CHECK_SECONDS", DEFAULT_TOKEN_CHECK_SECONDS))
    now = time.monotonic()
    kept = _live_tokens.get(principal.jti or "")
    if kept is not None and now - kept[0] < keep and kept[1] == principal.user_id:
        return
    # autocommit: one round trip, no BEGIN/ROLLBACK around a single read
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        ensure_token_live(connection, principal)
    if principal.jti and keep > 0:
        if len(_live_tokens) > 10_000:
            for jti, (checked, _) in list(_live_tokens.items()):
                if now - checked >= keep:
                    _live_tokens.pop(jti, None)
        _live_tokens[principal.jti] = (now, principal.user_id)


def ensure_token_live(session: Any, principal: Principal) -> None:
    """Refuse a token that was revoked (logout), issued before a password change, or whose user
    was deactivated. One round trip: it runs on every request."""
    revoked = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == (principal.jti or "")).exists()
    row = session.execute(select(users.c.active, users.c.tokens_valid_after, revoked.label("revoked")).where(
        users.c.user_id == principal.user_id)).first()
    if row is None or not row.active:
        raise Unauthorized("the account no longer exists or is deactivated")
    if row.tokens_valid_after is not None and (principal.issued_at or 0) < row.tokens_valid_after:
        raise Unauthorized("the token was issued before the password was changed; sign in again")
    if row.revoked:
        raise Unauthorized("the token was revoked (signed out); sign in again")


def issue_token(principal: Principal, config: Mapping[str, Any]) -> Any:
    ttl = int(config.get("TOKEN_TTL_SECONDS") or 3600)
    now = int(time.time())
    claims = {
        "sub": principal.user_id, "name": principal.username, "role": principal.role,
        "scope": principal.scope, "iat": now, "exp": now + ttl,
        "jti": str(uuid.uuid4()), "issued": time.time(),
    }
    token = jwt.encode(claims, signing_key(config), algorithm="HS256")
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl}


# A token verified once is the same token the next time: its signature and claims cannot change,
# only its expiry comes (checked on each use). Verifying was 5 % of the gateway's CPU per request.
_verified: dict[tuple[Any, str], Principal] = {}  # (signing key, token) -> its principal
VERIFIED_KEPT = 10_000


def principal_from_header(header: str | None, config: Mapping[str, Any]) -> Any:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("send Authorization: Bearer <token> (get one from POST /api/v1/auth/token)")
    token = header[7:].strip()
    kept_as = (signing_key(config), token)
    known = _verified.get(kept_as)
    if known is not None and (known.expires_at or 0) > time.time():
        return known
    principal = _verify(token, config)
    if len(_verified) >= VERIFIED_KEPT:
        _verified.clear()
    _verified[kept_as] = principal
    return principal


def _verify(token: str, config: Mapping[str, Any]) -> Principal:
    try:
        claims = jwt.decode(token, signing_key(config), algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; ask for a new one") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid") from None
    return Principal(claims["sub"], claims.get("name", ""), claims["role"], claims.get("scope") or {},
                     claims.get("jti"), claims.get("issued", claims.get("iat")), claims.get("exp"))
