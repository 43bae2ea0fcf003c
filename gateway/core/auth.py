"""Bearer tokens (HS256 JWT) and who a caller is: name, unit, roles (interfaces.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

ROLES = ("reader", "evaluator", "operator", "credit", "pii", "supervisor")


class AuthError(Exception):
    """No token, a bad signature, an expired token or missing claims: HTTP 401, code UNAUTHENTICATED."""

    code = "UNAUTHENTICATED"


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    unit: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def has(self, role: str) -> bool:
        return role in self.roles


def mint_token(secret: str, sub: str, unit: str, roles: list[str], ttl_s: int = 3600) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"sub": sub, "unit": unit, "roles": list(roles), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "unit"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("invalid token: roles must be a list of strings")
    if not isinstance(claims["sub"], str) or not isinstance(claims["unit"], str):
        raise AuthError("invalid token: sub and unit must be strings")
    return Principal(claims["sub"], claims["unit"], frozenset(roles))


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be: Bearer <token>")
    return token.strip()
