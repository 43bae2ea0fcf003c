"""The GraphQL gateway: one schema over the store and the four external systems (interfaces.md).

Modules: `http` (GraphQL over HTTP: negotiate, authenticate, parse/validate with a cache, limits, execute,
audit), `schema`/`query`/`mutations`/`types`/`listing` (the schema), `context` (who asks, what they may
see), `dataloader`/`loaders` (per-request batching, ≤ 100 keys per upstream call), `limits` (depth and
cost), `persisted` (operations by hash), `audit` (the personal-data audit log), `kpi_report`, `flags`,
`errors` (extensions.code). The rules they apply live in the domain packages (`gateway.complaints.pii`,
`gateway.complaints.status`, `gateway.reports.deadlines`, `gateway.units.cache`).
"""
