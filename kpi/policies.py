"""Deadline policies as dated versions, and scoring schemes (kpi.md "Obligations", "Score and rank").

Built in: policy `order-20` (SAMR Order No. 20 and the penalty-procedure rules: accept 7, conclude
mediation 45, decide on a report 15 + extensions capped at 15, reply to a real-name reporter 5 working
days), in force from the beginning of time; scoring scheme `default`.

GATEWAY_POLICY_FILE (JSON) adds versions and schemes without a code change:

    {
      "policies": [
        {"version": "order-121", "effective_from": "2026-04-15",
         "days": {"C_ACCEPT": 7, "C_CONCLUDE": 45, "R_DECIDE": 15, "R_REPLY": 5},
         "r_decide_extension_cap": 15}
      ],
      "schemes": {
        "timeliness-first": {"timeliness_rate": 70, "reply_rate": 10, "satisfaction_rate": 10, "callback_rate": 10}
      }
    }

An obligation uses the version in force on the Asia/Shanghai date of the instant it starts: the one with
the latest `effective_from` on or before that date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

OBLIGATIONS = ("C_ACCEPT", "C_CONCLUDE", "R_DECIDE", "R_REPLY")
RATES = (
    "timeliness_rate",
    "reply_rate",
    "callback_rate",
    "satisfaction_rate",
    "mediation_success_rate",
    "case_filing_rate",
    "supervision_rate",  # supervision orders answered on time (supervision.md)
)
DEFAULT_SCHEME = "default"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says where."""


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: str
    effective_from: date
    days: dict[str, int]  # working days per obligation code
    r_decide_extension_cap: int  # at most this many extra working days from EXTENDED events


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    weights: dict[str, float]  # rate name -> weight


ORDER_20 = PolicyVersion(
    "order-20", date.min, {"C_ACCEPT": 7, "C_CONCLUDE": 45, "R_DECIDE": 15, "R_REPLY": 5}, 15
)
DEFAULT = Scheme(
    DEFAULT_SCHEME, {"timeliness_rate": 40, "reply_rate": 20, "satisfaction_rate": 30, "callback_rate": 10}
)


@dataclass(frozen=True)
class Policies:
    """Every policy version (sorted by effective date) and every scoring scheme."""

    versions: tuple[PolicyVersion, ...] = (ORDER_20,)
    schemes: dict[str, Scheme] = field(default_factory=lambda: {DEFAULT_SCHEME: DEFAULT})

    def in_force(self, day: date) -> PolicyVersion:
        """The version in force on `day` (an Asia/Shanghai date)."""
        for version in reversed(self.versions):  # a handful of versions: a scan is the simplest
            if version.effective_from <= day:
                return version
        raise PolicyError(f"no deadline policy is in force on {day}")

    def scheme(self, name: str) -> Scheme:
        try:
            return self.schemes[name]
        except KeyError:
            raise PolicyError(f"unknown scoring scheme {name!r}; known: {', '.join(sorted(self.schemes))}") from None

    @property
    def fingerprint(self) -> str:
        """Changes when any deadline rule changes (schemes do not affect stored facts)."""
        text = json.dumps(
            [[v.version, v.effective_from.isoformat(), v.days, v.r_decide_extension_cap] for v in self.versions],
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | Path | None) -> Policies:
        if not path:
            return cls()
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc}") from None
        return cls.from_json(text, str(path))

    @classmethod
    def from_json(cls, text: str, source: str = "policy file") -> Policies:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or set(doc) - {"policies", "schemes"}:
            raise PolicyError(f"{source}: expected an object with keys policies and/or schemes")
        versions = [ORDER_20, *(_version(v, f"{source}: policies[{i}]") for i, v in enumerate(_list(doc, source)))]
        names = [v.version for v in versions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PolicyError(f"{source}: policy version named twice: {', '.join(dupes)}")
        versions.sort(key=lambda v: v.effective_from)
        starts = [v.effective_from for v in versions]
        if len(set(starts)) != len(starts):
            raise PolicyError(f"{source}: two policy versions take effect on the same date")
        schemes = {DEFAULT_SCHEME: DEFAULT}
        raw_schemes = doc.get("schemes", {})
        if not isinstance(raw_schemes, dict):
            raise PolicyError(f"{source}: schemes must be an object of name -> weights")
        for name, weights in raw_schemes.items():
            if name == DEFAULT_SCHEME:
                raise PolicyError(f"{source}: scheme {DEFAULT_SCHEME!r} is built in and cannot be redefined")
            schemes[name] = _scheme(name, weights, f"{source}: schemes.{name}")
        return cls(tuple(versions), schemes)


def _list(doc: dict[str, Any], source: str) -> list[Any]:
    raw = doc.get("policies", [])
    if not isinstance(raw, list):
        raise PolicyError(f"{source}: policies must be a list")
    return raw


def _version(raw: Any, where: str) -> PolicyVersion:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be an object")
    unknown = set(raw) - {"version", "effective_from", "days", "r_decide_extension_cap"}
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("version")
    if not isinstance(name, str) or not name or len(name) > 32:
        raise PolicyError(f"{where}.version: a name of 1–32 characters is required")
    try:
        effective = date.fromisoformat(str(raw.get("effective_from")))
    except ValueError:
        raise PolicyError(f"{where}.effective_from: a date YYYY-MM-DD is required") from None
    days = raw.get("days")
    if not isinstance(days, dict) or set(days) != set(OBLIGATIONS):
        raise PolicyError(f"{where}.days: give the working days of each of {', '.join(OBLIGATIONS)}")
    for code, n in days.items():
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 365:
            raise PolicyError(f"{where}.days.{code}: a whole number of working days, 1 to 365")
    cap = raw.get("r_decide_extension_cap", 15)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 365:
        raise PolicyError(f"{where}.r_decide_extension_cap: a whole number of working days, 0 to 365")
    return PolicyVersion(name, effective, dict(days), cap)


def _scheme(name: str, raw: Any, where: str) -> Scheme:
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f"{where}: must be an object of rate -> weight")
    weights: dict[str, float] = {}
    for rate, weight in raw.items():
        if rate not in RATES:
            raise PolicyError(f"{where}: unknown rate {rate!r}; rates are {', '.join(RATES)}")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise PolicyError(f"{where}.{rate}: a weight must be a non-negative number")
        weights[rate] = float(weight)
    if sum(weights.values()) <= 0:
        raise PolicyError(f"{where}: the weights must not all be zero")
    return Scheme(name, weights)
