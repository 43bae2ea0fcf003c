"""A real province's five-level unit tree from the GB/T 2260 list that python-stdnum ships.

Levels 1–4 are the national administration, the province, its cities and counties; each county gets
generated stations (基层所) below it. Used by `gateway demo`, the tests and the benchmarks.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import re

NATIONAL = ("100000", "国家市场监督管理总局")
_LINE = re.compile(r'^(\d{6}) county="([^"]*)" prefecture="([^"]*)" province="([^"]*)"')


def province_tree(province: str = "51", stations_per_county: int = 2,
                  max_counties: int | None = None) -> list[tuple[str, str, int, str]]:
    """Rows (code, name, level, parent_code) for one province (its 2-digit prefix), parents first."""
    text = importlib.resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    prov_name = ""
    cities: dict[str, str] = {}
    counties: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or not m.group(1).startswith(province):
            continue
        code, county, prefecture, prov = m.groups()
        prov_name = prov_name or prov
        city_code = code[:4] + "00"
        if code == city_code or code.endswith("0000"):
            continue
        name = prefecture if prefecture not in ("", "市辖区", "县") else prov + prefecture
        cities.setdefault(city_code, name)
        counties.setdefault(code, (county, city_code))
    if not prov_name:
        raise ValueError(f"no division codes for province prefix {province}")
    rows: list[tuple[str, str, int, str]] = [(NATIONAL[0], NATIONAL[1], 1, "")]
    prov_code = province + "0000"
    rows.append((prov_code, f"{prov_name}市场监督管理局", 2, NATIONAL[0]))
    for code, name in sorted(cities.items()):
        rows.append((code, f"{name}市场监督管理局", 3, prov_code))
    chosen = sorted(counties.items())[:max_counties] if max_counties else sorted(counties.items())
    for code, (name, city) in chosen:
        if city in cities:
            rows.append((code, f"{name}市场监督管理局", 4, city))
    for code, (name, _city) in chosen:
        for n in range(1, stations_per_county + 1):
            rows.append((f"{code}{n:03d}", f"{name}第{n}市场监督管理所", 5, code))
    used_cities = {r[3] for r in rows if r[2] == 4}
    return [r for r in rows if r[2] != 3 or r[0] in used_cities]


def units_csv(rows: list[tuple[str, str, int, str]]) -> str:
    """The rows of `province_tree` as a unit file (records.md's CSV, with its header)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "name", "level", "parent_code"])
    writer.writerows(rows)
    return out.getvalue()


def tree_ancestors(rows: list[tuple[str, str, int, str]]) -> dict[str, tuple[str | None, ...]]:
    """For rows (code, name, level, parent_code): each code's ancestors by level 1..5, itself included, None
    below its level (the u1..u5 of a record it handles)."""
    parents = {code: parent for code, _, _, parent in rows}
    levels = {code: level for code, _, level, _ in rows}
    out: dict[str, tuple[str | None, ...]] = {}
    for code in parents:
        anc: list[str | None] = [None] * 5
        cur: str | None = code
        while cur:
            anc[levels[cur] - 1] = cur
            cur = parents[cur] or None
        out[code] = tuple(anc)
    return out
