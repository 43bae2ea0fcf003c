"""The org-unit tree (五级): its table, the tree in memory (`tree`, and the per-process snapshot `cache`),
jurisdiction (`jurisdiction`: who may see what, over the ancestor columns, written once), and a real
province's tree for the demo, tests and benchmarks (`sample`).

May import `gateway.core`.
"""
