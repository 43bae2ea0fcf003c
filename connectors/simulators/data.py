"""Realistic generated data for the simulators and the demo: USCCs with valid check characters, enterprises
derived from their USCC, complaint records valid per records.md, and the cases that follow from them.

Everything is deterministic for a given seed, so a demo or a test sees the same world every time.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import random
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from stdnum.cn import uscc as stdnum_uscc

CST = timezone(timedelta(hours=8))  # China Standard Time: what the platform writes in its timestamps

# A small five-level tree (national, Sichuan, two cities, counties, stations) for tests and the CLI default.
SAMPLE_UNITS: tuple[tuple[str, str, int, str], ...] = (
    ("100000", "国家市场监督管理总局", 1, ""),
    ("510000", "四川省市场监督管理局", 2, "100000"),
    ("510800", "广元市市场监督管理局", 3, "510000"),
    ("510802", "广元市利州区市场监督管理局", 4, "510800"),
    ("510802001", "利州区东坝市场监管所", 5, "510802"),
    ("510802002", "利州区嘉陵市场监管所", 5, "510802"),
    ("510811", "广元市昭化区市场监督管理局", 4, "510800"),
    ("510811001", "昭化区元坝市场监管所", 5, "510811"),
    ("510100", "成都市市场监督管理局", 3, "510000"),
    ("510104", "成都市锦江区市场监督管理局", 4, "510100"),
    ("510104001", "锦江区春熙路市场监管所", 5, "510104"),
    ("510107", "成都市武侯区市场监督管理局", 4, "510100"),
    ("510107001", "武侯区浆洗街市场监管所", 5, "510107"),
)


def sample_units_csv() -> str:
    """SAMPLE_UNITS as the org-unit CSV of records.md."""
    lines = ["code,name,level,parent_code"]
    lines += [f"{code},{name},{level},{parent}" for code, name, level, parent in SAMPLE_UNITS]
    return "\n".join(lines) + "\n"


def sample_handling_units() -> list[str]:
    """The units that handle records in the sample tree: counties and stations."""
    return [code for code, _, level, _ in SAMPLE_UNITS if level >= 4]


# ---------------------------------------------------------------------------------------------- places


@lru_cache(maxsize=1)
def _places() -> dict[str, tuple[str, str]]:
    """GB/T 2260 county codes -> (prefecture, county) names, as python-stdnum ships them."""
    text = importlib.resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    places: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if line[:6].isdigit():
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', line))
            places[line[:6]] = (attrs.get("prefecture") or attrs.get("province", ""), attrs.get("county", ""))
    return places


def division_code(unit_code: str) -> str | None:
    """The county division code a unit sits in, when it is a real one (region_code must be)."""
    code = unit_code[:6]
    return code if code in _places() else None


# ---------------------------------------------------------------------------------------------- USCC

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714) with its own check character."""
    body = "".join(rng.choice("0123456789" if i else "0123456789MA") for i in range(8))
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(rng: random.Random, region: str = "510802", kind: str = "91") -> str:
    """A Unified Social Credit Code: authority+type, region, organisation code, check character."""
    body = kind + region + _org_code(rng)
    return body + stdnum_uscc.calc_check_digit(body)


# ---------------------------------------------------------------------------------------------- enterprises

_BRANDS = (
    "鑫盛 恒达 华联 金汇 永辉 宏图 顺丰 天府 蜀香 嘉禾 锦程 万家 利民 康泰 优品 好又多 百佳 瑞丰 新世纪 一品"
).split()
_VIOLATIONS = ("销售过期食品", "价格欺诈", "虚假宣传", "销售假冒注册商标商品")
_TRADES = {
    "FOOD": ["食品", "餐饮管理", "农产品", "火锅"],
    "DRUG": ["大药房", "医药连锁"],
    "MEDICAL_DEVICE": ["医疗器械"],
    "COSMETICS": ["化妆品", "美容"],
    "SPECIAL_EQUIPMENT": ["电梯工程", "锅炉设备"],
    "PRODUCT_QUALITY": ["家电", "电子科技", "建材"],
    "PRICE": ["商贸", "超市"],
    "ADVERTISING": ["文化传媒", "广告"],
    "TRADEMARK": ["服饰", "商贸"],
    "PATENT": ["科技"],
    "CONTRACT": ["房地产经纪", "装饰工程", "教育咨询"],
    "SERVICE": ["健身", "汽车服务", "通信器材"],
    "OTHER": ["商贸"],
}
_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高".split()
_GIVEN = "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 霞 平 刚 桂英 建华 志强".split()


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def _company_name(rng: random.Random, region: str, category: str = "OTHER") -> str:
    prefecture, county = _places().get(region, ("", ""))
    place = (prefecture or "").removesuffix("市") or "四川"
    return f"{place}{rng.choice(_BRANDS)}{rng.choice(_TRADES.get(category, _TRADES['OTHER']))}有限公司"


def enterprise_for(uscc: str) -> dict[str, Any]:
    """The enterprise a credit system would answer for this code: derived from its hash, so stable."""
    rng = random.Random(hashlib.sha256(uscc.encode()).digest())
    region = uscc[2:8]
    serious = rng.random() < 0.03
    abnormal = serious or rng.random() < 0.08
    risk = "D" if serious else rng.choices("ABCD", weights=(60, 25, 11, 4))[0]
    status = rng.choices(("ACTIVE", "REVOKED", "CANCELLED"), weights=(92, 5, 3))[0]
    updated = datetime(2024, 1, 1, 9, tzinfo=CST) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
    return {
        "uscc": uscc,
        "name": _company_name(rng, region, rng.choice(list(_TRADES))),
        "legal_representative": _person(rng),
        "registration_status": status,
        "registration_authority": region,
        "abnormal_operation": abnormal,
        "serious_violation": serious,
        "risk_level": risk,
        "updated_at": updated.isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------- records

_KINDS = (("COMPLAINT", 55), ("REPORT", 25), ("INQUIRY", 15), ("SUGGESTION", 5))
_CHANNELS = (
    ("HOTLINE", 45), ("WEB", 15), ("WECHAT", 12), ("APP", 8), ("MINI_PROGRAM", 6), ("SMS", 2), ("LETTER", 2),
    ("VISIT", 3), ("GOV_HOTLINE_TRANSFER", 6), ("OTHER_TRANSFER", 1),
)
_HOTLINES = (("12315", 80), ("12365", 8), ("12331", 6), ("12358", 4), ("12330", 2))
_CATEGORIES = (
    ("FOOD", 20), ("DRUG", 4), ("MEDICAL_DEVICE", 2), ("COSMETICS", 5), ("SPECIAL_EQUIPMENT", 2),
    ("PRODUCT_QUALITY", 15), ("PRICE", 8), ("ADVERTISING", 5), ("TRADEMARK", 3), ("PATENT", 1),
    ("CONTRACT", 15), ("SERVICE", 15), ("OTHER", 5),
)
_SUMMARIES = {
    "FOOD": "在该店购买的食品已过保质期仍在销售，食用后出现腹泻症状。",
    "DRUG": "药店销售处方药未查验处方，药品包装破损。",
    "MEDICAL_DEVICE": "购买的血压计测量误差明显，商家拒绝退换。",
    "COSMETICS": "网购化妆品使用后皮肤过敏，怀疑为假冒产品。",
    "SPECIAL_EQUIPMENT": "小区电梯多次困人，维保单位未按期检验。",
    "PRODUCT_QUALITY": "新买的电热水器漏水，商家拖延维修。",
    "PRICE": "商场标价与结算价格不一致，存在价格欺诈。",
    "ADVERTISING": "商家宣传\u201c国家级\u201d\u201c最佳\u201d等绝对化用语，涉嫌虚假广告。",
    "TRADEMARK": "店内销售仿冒知名品牌服装。",
    "PATENT": "产品标注的专利号已失效仍在宣传。",
    "CONTRACT": "预付卡办理后门店关闭，剩余费用无法退还。",
    "SERVICE": "健身房擅自变更服务内容，拒绝办理退费。",
    "OTHER": "商家经营行为不规范，请求依法处理。",
}
_REASONS = ("不属于市场监管部门职责范围", "投诉人无法提供证据", "双方已自行和解", "被投诉人已注销")
_SATISFACTION = (("SATISFIED", 70), ("BASICALLY_SATISFIED", 15), ("UNSATISFIED", 8), ("UNREACHABLE", 7))


def _pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _ts(at: datetime) -> str:
    return at.astimezone(CST).isoformat(timespec="seconds")


def _money(rng: random.Random, low: int, high: int) -> str:
    return f"{Decimal(rng.randrange(low * 100, high * 100)) / 100:.2f}"


class _Lifecycle:
    """Builds one record's events in time order, stopping at the generation horizon."""

    def __init__(self, record_id: str, unit: str, start: datetime, horizon: datetime) -> None:
        self.record_id, self.unit, self.at, self.horizon = record_id, unit, start, horizon
        self.events: list[dict[str, Any]] = []
        self.open = True

    def add(self, type_: str, after: timedelta, data: dict[str, Any] | None = None, unit: str | None = "") -> bool:
        """Append an event `after` the previous one; False (and no more events) past the horizon."""
        if not self.open:
            return False
        at = self.at + after
        if at > self.horizon:
            self.open = False
            return False
        self.at = at
        self.events.append({
            "id": f"{self.record_id}-E{len(self.events) + 1}",
            "type": type_,
            "at": _ts(at),
            "unit": self.unit if unit == "" else unit,
            "data": data or {},
        })
        return True


def _days(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low * 24, high * 24))


def generate_records(
    n: int,
    units: Sequence[str] | None = None,
    seed: int = 0,
    *,
    start: date = date(2024, 1, 1),
    days: int = 180,
    id_prefix: str = "C",
    enterprises: int | None = None,
) -> list[dict[str, Any]]:
    """`n` complaint records valid per records.md, handled by `units` (default: the sample tree's counties and
    stations), received over `days` from `start`. A pool of enterprises per region gets repeat complaints, so
    surges happen; in-progress records stop at the horizon (`days` + 20 after `start`)."""
    rng = random.Random(seed)
    units = list(units or sample_handling_units())
    horizon = datetime.combine(start, datetime.min.time(), CST) + timedelta(days=days + 20)
    pool_size = enterprises or max(5, n // 12)
    pool: list[tuple[str, str, str]] = []  # (uscc, name, region)
    for _ in range(pool_size):
        region = division_code(rng.choice(units)) or "510802"
        uscc = make_uscc(rng, region)
        pool.append((uscc, enterprise_for(uscc)["name"], region))  # the name the credit system will answer
    hot = pool[: max(1, pool_size // 10)]  # a few enterprises draw many complaints
    case_seq = 0
    records = []
    for i in range(n):
        rid = f"{id_prefix}{i + 1:08d}"
        kind = _pick(rng, _KINDS)
        channel = _pick(rng, _CHANNELS)
        category = _pick(rng, _CATEGORIES)
        unit = rng.choice(units)
        received = datetime.combine(start, datetime.min.time(), CST) + timedelta(
            seconds=rng.randrange(0, days * 86400)
        )
        urgency = rng.choices(("NORMAL", "URGENT", "CRITICAL"), weights=(90, 8.5, 1.5))[0]
        respondent = None
        if rng.random() < (0.92 if kind in ("COMPLAINT", "REPORT") else 0.2):
            uscc, name, _ = rng.choice(hot if rng.random() < 0.3 else pool)
            respondent = {"uscc": uscc if rng.random() < 0.88 else None, "name": name}
        real_name = rng.random() < (0.85 if kind != "REPORT" else 0.6)
        complainant = {
            "name": _person(rng) if real_name else None,
            "phone": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}" if real_name or rng.random() < 0.5 else None,
            "real_name": real_name,
        }
        amount = _money(rng, 20, 20000) if kind == "COMPLAINT" and rng.random() < 0.7 else None
        life = _Lifecycle(rid, unit, received, horizon)
        life.add("DISPATCHED", timedelta(minutes=rng.randrange(5, 600)), {"to": unit}, unit=None)
        recovered = None
        stop_early = rng.random() < 0.12  # still being handled, whatever the horizon says
        if kind == "COMPLAINT":
            if rng.random() < 0.1:
                life.add("REJECTED", _days(rng, 1, 9), {"reason": rng.choice(_REASONS)})
                life.add("REPLIED", _days(rng, 0, 2))
            elif life.add("ACCEPTED", _days(rng, 0.5, 10)) and not stop_early:
                succeeded = rng.random() < 0.6
                if life.add("MEDIATION_SUCCEEDED" if succeeded else "MEDIATION_FAILED", _days(rng, 3, 55),
                            {} if succeeded else {"reason": "双方未能达成一致"}):
                    if succeeded and amount:
                        recovered = f"{Decimal(amount) * Decimal(rng.choice(('1', '0.5', '0.8'))):.2f}"
                    life.add("REPLIED", _days(rng, 0, 3))
                    if rng.random() < 0.8:
                        life.add("CALLBACK", _days(rng, 1, 6), {"satisfaction": _pick(rng, _SATISFACTION)})
                    life.add("CLOSED", _days(rng, 0, 2))
        elif kind == "REPORT":
            if rng.random() < 0.1:
                life.add("EXTENDED", _days(rng, 8, 14), {"working_days": 15})
            if not stop_early:
                if rng.random() < 0.3:
                    case_seq += 1
                    case_no = f"{unit[:6]}-{received.year}-{case_seq:05d}"
                    life.add("CASE_FILED", _days(rng, 2, 22), {"case_no": case_no})
                else:
                    life.add("CASE_NOT_FILED", _days(rng, 2, 22), {"reason": "经核查未发现违法行为"})
                if real_name:
                    life.add("REPLIED", _days(rng, 0.5, 8))
                life.add("CLOSED", _days(rng, 0, 3))
        elif not stop_early:
            life.add("REPLIED", _days(rng, 0, 3 if kind == "INQUIRY" else 10))
            life.add("CLOSED", _days(rng, 0, 1))
        records.append({
            "id": rid,
            "kind": kind,
            "channel": channel,
            "hotline": _pick(rng, _HOTLINES) if channel == "HOTLINE" else None,
            "urgency": urgency,
            "category": category,
            "received_at": _ts(received),
            "handling_unit": unit,
            "region_code": division_code(unit),
            "respondent": respondent,
            "complainant": complainant,
            "summary": _SUMMARIES[category],
            "amount_involved": amount,
            "recovered_amount": recovered,
            "events": life.events,
            # The record's version (records.md 1.1): the platform last changed it with its last event.
            "updated_at": life.events[-1]["at"] if life.events else _ts(received),
        })
    return records


# ---------------------------------------------------------------------------------------------- cases


def cases_from_records(records: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """The enforcement system's cases for every report that got CASE_FILED: linked by complaint id."""
    rng = random.Random(seed)
    cases = []
    for rec in records:
        for ev in rec.get("events", []):
            if ev.get("type") == "CASE_FILED":
                cases.append(make_case(rng, ev["data"]["case_no"], [rec["id"]], rec["handling_unit"],
                                       (rec.get("respondent") or {}).get("uscc"), ev["at"]))
    return cases


def make_case(
    rng: random.Random,
    case_no: str,
    complaint_ids: list[str],
    unit_code: str,
    respondent_uscc: str | None,
    filed_at: str | None = None,
) -> dict[str, Any]:
    filed = datetime.fromisoformat(filed_at) if filed_at else datetime(2024, 3, 1, 10, tzinfo=CST)
    status = rng.choices(("REGISTERED", "INVESTIGATING", "PENALIZED", "CLOSED"), weights=(15, 30, 35, 20))[0]
    penalized = status in ("PENALIZED", "CLOSED") and rng.random() < 0.8
    return {
        "case_no": case_no,
        "lead_id": f"CL{rng.randrange(10**8):08d}" if rng.random() < 0.5 else None,
        "complaint_ids": complaint_ids,
        "respondent_uscc": respondent_uscc,
        "unit_code": unit_code,
        "status": status,
        "violation": rng.choice(_VIOLATIONS) if penalized else None,
        "penalty_amount": _money(rng, 1000, 200000) if penalized else None,
        "filed_at": _ts(filed),
        "closed_at": _ts(filed + timedelta(days=rng.randrange(30, 120))) if status == "CLOSED" else None,
    }


def now_ts() -> str:
    return _ts(datetime.now(UTC))
