"""The GraphQL gateway: one schema over the store and the four external systems (interfaces.md).

Modules: `schema` (types and root fields), `loaders` (per-request batching), `context` (who asks, what
they may see), `limits` (depth and cost), `persisted` (operations by hash), `http` (GraphQL over HTTP).
"""
