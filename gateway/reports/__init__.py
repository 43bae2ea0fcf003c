"""The statistical standard applied to the store: KPI facts derived when records are stored (`facts`),
deadlines of one record (`deadlines`), and the KPI report built with aggregate SQL (`build`).

May import `gateway.core`, `gateway.units`, `gateway.complaints` and `kpi`.
"""
