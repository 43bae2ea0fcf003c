"""The GraphQL gateway: one schema over the store and the four external systems (interfaces.md).

Modules: `http` (GraphQL over HTTP: negotiate, authenticate, parse/validate with a cache, limits, execute,
audit), `schema`/`query`/`mutations`/`types`/`listing` (the schema), `context` (who asks, what they may
see), `dataloader`/`loaders` (per-request batching, ≤ 100 keys per upstream call), `unit_cache` (the unit
tree in memory), `limits` (depth and cost), `persisted` (operations by hash), `pii`/`audit` (masking and
the audit log), `deadlines` (kpi obligations), `kpi_report`, `flags`, `errors` (extensions.code).
"""
