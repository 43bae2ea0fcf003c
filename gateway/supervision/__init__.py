"""Supervision (跟踪催办、督办, supervision.md): what a superior unit does every day about its subordinates'
open cases — the deadline lights over the KPI facts (`lights`), supervision orders (督办单) with their
responses and states (`models`, `orders`), and the `supervision` block of every KPI report row (`report`);
and where complaints rise (分析研判): `analysis` (trends 环比/同比 and zero-filled series, aggregate SQL
over `complaints`) with its documents and downloads (`exports`). Orders announce themselves on the live
feed through `gateway.core.feed`.

Layer: above `gateway.flags` and `gateway.reports`, below `gateway.ingest` (pyproject.toml). Supervision
reads the KPI facts and the one calendar cache (`gateway.reports.facts`) so that a light and a report
state can never disagree; the report in turn reads supervision orders through the row-section interface
of `gateway.reports.build` (a callable the API and CLI hand in), never by importing this package.

May import `gateway.core`, `gateway.units`, `gateway.complaints`, `gateway.reports`, `gateway.flags` and
`kpi`.
"""
