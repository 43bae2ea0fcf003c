"""Dated deadline policies and scoring schemes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from kpi.policies import DEFAULT_SCHEME, Policies, PolicyError

ORDER_121 = {
    "version": "order-121",
    "effective_from": "2026-04-15",
    "days": {"C_ACCEPT": 5, "C_CONCLUDE": 30, "R_DECIDE": 10, "R_REPLY": 3},
    "r_decide_extension_cap": 10,
}


def test_builtin_order_20_and_default_scheme() -> None:
    p = Policies()
    v = p.in_force(date(2024, 1, 1))
    assert v.version == "order-20"
    assert v.days == {"C_ACCEPT": 7, "C_CONCLUDE": 45, "R_DECIDE": 15, "R_REPLY": 5}
    assert v.r_decide_extension_cap == 15
    assert p.scheme(DEFAULT_SCHEME).weights == {
        "timeliness_rate": 40, "reply_rate": 20, "satisfaction_rate": 30, "callback_rate": 10,
    }


def test_operator_version_takes_effect_on_its_date(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"policies": [ORDER_121], "schemes": {"fast": {"timeliness_rate": 1}}}))
    p = Policies.from_file(path)
    assert p.in_force(date(2026, 4, 14)).version == "order-20"
    assert p.in_force(date(2026, 4, 15)).version == "order-121"
    assert p.in_force(date(2026, 4, 15)).days["C_ACCEPT"] == 5
    assert p.scheme("fast").weights == {"timeliness_rate": 1.0}
    assert p.fingerprint != Policies().fingerprint


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"policies": [{**ORDER_121, "days": {"C_ACCEPT": 5}}]}, "days"),
        ({"policies": [{**ORDER_121, "effective_from": "soon"}]}, "effective_from"),
        ({"policies": [{**ORDER_121, "version": "order-20"}]}, "named twice"),
        ({"policies": [ORDER_121, {**ORDER_121, "version": "x"}]}, "same date"),
        ({"schemes": {"x": {"speed": 1}}}, "unknown rate"),
        ({"schemes": {"x": {"reply_rate": -1}}}, "non-negative"),
        ({"schemes": {"x": {"reply_rate": 0}}}, "all be zero"),
        ({"schemes": {"default": {"reply_rate": 1}}}, "built in"),
        ({"other": 1}, "expected an object"),
    ],
)
def test_bad_policy_file(doc: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policies.from_json(json.dumps(doc))


def test_unknown_scheme() -> None:
    with pytest.raises(PolicyError, match="unknown scoring scheme"):
        Policies().scheme("nope")
