"""Who is calling: the principal of a bearer token.

Every HTTP edge signs bearer callers in through `authenticate` (GraphQL, the REST report through the FastAPI
dependency `bearer_sign_in`, the pages through `gateway.api.session`), so an unset GATEWAY_JWT_SECRET, a bad
signature or an expired token get the same answer everywhere, never a 500. The dependency returns the
failure instead of raising it, because each edge answers it in its own shape (JSON errors, an HTML page).
"""

from __future__ import annotations

from fastapi import Request

from gateway.core.auth import AuthError, Principal, bearer_token, decode_token
from gateway.core.settings import Settings

SignIn = Principal | AuthError  # the caller, or why they could not be signed in


def authenticate(settings: Settings, token: str) -> Principal:
    """The principal of `token`; AuthError when the gateway has no secret or the token is not valid."""
    if settings.jwt_secret is None:
        raise AuthError("the gateway has no GATEWAY_JWT_SECRET: no token can be checked")
    if not token:
        raise AuthError("no token given")
    return decode_token(settings.jwt_secret.get_secret_value(), token)


async def bearer_sign_in(request: Request) -> SignIn:
    """Dependency: the caller of `Authorization: Bearer <token>`."""
    try:
        return authenticate(request.app.state.settings, bearer_token(request.headers.get("authorization")))
    except AuthError as exc:
        return exc
