"""Identity: users with argon2 password hashes, short-lived JWT bearer tokens, roles + scopes."""
import time
import uuid
from dataclasses import dataclass, field

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Column, DateTime, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB

from services.common.errors import Conflict, FupinError, ValidationFailed

ROLES = ("admin", "leading_group", "township", "department", "unit", "cadre", "credit_union", "inspector")
# The scope key each scoped role must carry (API.md "Identity and roles").
SCOPE_KEYS = {"township": "township_id", "department": "department", "unit": "unit_id", "cadre": "cadre_id"}

metadata = MetaData()
users = Table(
    "users", metadata,
    Column("user_id", Text, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("scope", JSONB, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

_hasher = PasswordHasher()


class Unauthorized(FupinError):
    code = "unauthorized"
    http_status = 401


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: str
    scope: dict = field(default_factory=dict)

    def as_actor(self):
        return {"id": self.user_id, "username": self.username, "role": self.role}


def signing_key(config):
    secret = config.get("JWT_SECRET") or ""
    if not secret:
        if config.get("ENVIRONMENT", "development") != "development":
            raise RuntimeError("FUPIN_JWT_SECRET must be set outside development")
        secret = "development-only-signing-key"  # so a laptop runs; refused in production above
    return secret


def check_scope(role, scope):
    if role not in ROLES:
        raise ValidationFailed("unknown role", {"role": [f"must be one of {', '.join(ROLES)}"]})
    scope = scope or {}
    key = SCOPE_KEYS.get(role)
    if key and not scope.get(key):
        raise ValidationFailed(f"a {role} user needs scope.{key}", {f"scope.{key}": ["required for this role"]})
    return {key: scope[key]} if key else {}


def create_user(session, username, password, role, scope=None):
    scope = check_scope(role, scope)
    if len(password or "") < 8:
        raise ValidationFailed("password too short", {"password": ["at least 8 characters"]})
    exists = session.execute(select(users.c.user_id).where(users.c.username == username)).first()
    if exists:
        raise Conflict("a user with this username exists", {"username": username})
    user_id = str(uuid.uuid4())
    session.execute(users.insert().values(
        user_id=user_id, username=username, password_hash=_hasher.hash(password),
        role=role, scope=scope, active=True,
    ))
    return {"user_id": user_id, "username": username, "role": role, "scope": scope}


def ensure_first_admin(session, password):
    """Create `admin` from FUPIN_ADMIN_PASSWORD once; a later change of the variable does nothing."""
    if not password:
        return False
    if session.execute(select(users.c.user_id).where(users.c.username == "admin")).first():
        return False
    create_user(session, "admin", password, "admin")
    return True


def authenticate(session, username, password):
    row = session.execute(select(users).where(users.c.username == username, users.c.active.is_(True))).first()
    if row is None:
        _hasher.hash(password or "")  # same cost whether or not the user exists
        raise Unauthorized("wrong username or password")
    try:
        _hasher.verify(row.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        raise Unauthorized("wrong username or password") from None
    return Principal(row.user_id, row.username, row.role, row.scope or {})


def issue_token(principal, config):
    ttl = int(config.get("TOKEN_TTL_SECONDS") or 3600)
    now = int(time.time())
    claims = {
        "sub": principal.user_id, "name": principal.username, "role": principal.role,
        "scope": principal.scope, "iat": now, "exp": now + ttl,
    }
    token = jwt.encode(claims, signing_key(config), algorithm="HS256")
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl}


def principal_from_header(header, config):
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("send Authorization: Bearer <token> (get one from POST /api/v1/auth/token)")
    try:
        claims = jwt.decode(header[7:].strip(), signing_key(config), algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; ask for a new one") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid") from None
    return Principal(claims["sub"], claims.get("name", ""), claims["role"], claims.get("scope") or {})
