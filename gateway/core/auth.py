"""Bearer tokens (HS256 JWT) and who a caller is: name, unit, roles (interfaces.md)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

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
    """A signed HS256 token for `sub` at `unit` with `roles`, valid `ttl_s` seconds from now. ValueError for a role
    outside ROLES.
    """
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"sub": sub, "unit": unit, "roles": list(roles), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")


TIME_CLAIMS = ("exp", "nbf", "iat")


def _numeric_date(value: Any) -> bool:
    """A JWT NumericDate (RFC 7519): a JSON number of seconds, finite. Not a string of digits, not a bool:
    PyJWT reads claims with int(), which takes "99999999999" and True alike."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def decode_token(secret: str, token: str) -> Principal:
    """The caller a bearer token names. AuthError (HTTP 401) for a bad signature, an expired token, a missing
    claim, or a claim of the wrong type: `exp` (required), `nbf` and `iat` numbers; `sub` and `unit` non-empty
    strings; `roles` a list of strings."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "unit"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    except Exception:  # noqa: BLE001 - whatever a token holds, the answer is 401, never a crash
        raise AuthError("invalid token") from None
    if not isinstance(claims, dict):
        raise AuthError("invalid token: the claims are not a JSON object")
    for name in TIME_CLAIMS:
        if name in claims and not _numeric_date(claims[name]):
            raise AuthError(f"invalid token: {name} must be a number of seconds since the epoch")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("invalid token: roles must be a list of strings")
    if not all(isinstance(claims[c], str) and claims[c] for c in ("sub", "unit")):
        raise AuthError("invalid token: sub and unit must be non-empty strings")
    return Principal(claims["sub"], claims["unit"], frozenset(roles))


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value; AuthError when it is absent or another scheme.
    """
    if not authorization:
        raise AuthError("missing Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be: Bearer <token>")
    return token.strip()
