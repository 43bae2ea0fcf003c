"""The statistical standard applied to the store: KPI facts derived when records are stored (`facts`, their
tables in `models`), deadlines of one record (`deadlines`), the KPI report built with aggregate SQL
(`build`), and its arguments parsed from text (`arguments`).

May import `gateway.core`, `gateway.units`, `gateway.complaints` and `kpi`.
"""
