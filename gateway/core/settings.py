"""Configuration: every `GATEWAY_*` variable of interfaces.md, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SYSTEMS = ("complaints", "enforcement", "credit", "emergency")
JWT_SECRET_MIN_BYTES = 32  # HS256 keys shorter than the hash are guessable offline (RFC 7518 3.2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./gateway.db"
    jwt_secret: SecretStr | None = None  # `serve` refuses one under JWT_SECRET_MIN_BYTES
    ingest_secret: SecretStr | None = None
    ingest_tolerance_s: float = Field(300, ge=0)  # how far a push's signed `t` may be from our clock

    complaints_url: str | None = None
    complaints_token: SecretStr | None = None
    enforcement_url: str | None = None
    enforcement_token: SecretStr | None = None
    credit_url: str | None = None
    credit_token: SecretStr | None = None
    emergency_url: str | None = None
    emergency_token: SecretStr | None = None

    connector_timeout_s: float = Field(2.0, gt=0)
    connector_attempts: int = Field(4, ge=1)
    connector_budget_s: float = Field(6.0, gt=0)
    retry_budget: float = Field(0.2, ge=0)
    circuit_window_s: float = Field(30, gt=0)
    circuit_min_calls: int = Field(10, ge=1)
    circuit_failure_rate: float = Field(0.5, gt=0, le=1)
    circuit_open_s: float = Field(15, ge=0)

    holidays_file: str | None = None
    policy_file: str | None = None

    # Sign-in to the web pages (interfaces.md 1.1): OpenID Connect, authorization code with PKCE. Off while the
    # issuer is unset; then /login takes a pasted bearer token instead (docs/sign-in.md).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_unit_claim: str = "unit"
    oidc_roles_claim: str = "roles"
    oidc_scope: str = "openid profile"
    session_max_age_s: int = Field(8 * 3600, ge=60)  # a signed-in session lasts one working day at most
    # Working days left at which an open deadline turns yellow (supervision.md).
    yellow_days: int = Field(2, ge=0, le=366)

    max_depth: int = Field(12, ge=1)
    max_cost: int = Field(5000, ge=1)
    # GraphQL operator switches (documented in the README): accept only the persisted operations of
    # graphql/operations/ (or GATEWAY_GRAPHQL_OPERATIONS_DIR), and answer schema introspection or not.
    graphql_safelist: bool = False
    graphql_introspection: bool = True
    graphql_operations_dir: str | None = None

    # Not in interfaces.md; operator conveniences documented in the README.
    ingest_max_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    auto_migrate: bool = True

    # The outbox dispatcher of flags and incidents (docs/flags.md). GATEWAY_DISPATCHER=on|off: whether
    # `gateway serve` also delivers in the background (`gateway dispatch` always does).
    dispatcher: bool = True
    dispatch_interval_s: float = Field(default=1.0, gt=0)
    dispatch_batch: int = Field(default=100, ge=1)
    dispatch_concurrency: int = Field(default=16, ge=1)
    dispatch_lease_s: float = Field(default=60.0, gt=0)
    dispatch_backoff_base_s: float = Field(default=1.0, gt=0)
    dispatch_backoff_max_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        """An empty or blank variable counts as unset (interfaces.md 1.1): `GATEWAY_INGEST_SECRET=` in a
        compose file must not turn push ingest on with an empty key, nor a blank number fail start-up."""
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values
    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Only the async drivers work: say what to write instead of failing later on an import."""
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgresql+pg8000"):
            raise ValueError(f"{scheme}:// is not supported: write postgresql+asyncpg://user:password@host:5432/db")
        if scheme in ("sqlite", "sqlite+pysqlite"):
            raise ValueError(f"{scheme}:// is not supported: write sqlite+aiosqlite:///path/to/gateway.db")
        if scheme not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
            raise ValueError("must start with postgresql+asyncpg:// or sqlite+aiosqlite:///")
        return url

    def system_url(self, system: str) -> str | None:
        url: str | None = getattr(self, f"{system}_url")
        return url or None

    def system_token(self, system: str) -> str | None:
        token: SecretStr | None = getattr(self, f"{system}_token")
        return token.get_secret_value() if token else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
