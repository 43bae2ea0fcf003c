"""What every part of the gateway stands on: settings, database engines and the declarative base (`db`,
`models`), time (`time`: the Asia/Shanghai day, instants and dates read and written one way), money
(`money`), keyset cursors (`cursor`), bearer tokens and the caller (`auth`), observability (logs, request
ids, HTTP metrics), bulk writes (`bulk`), migrations, named values that survive restarts (`state`), and the
connectors built from the settings (`upstreams`: one set per process).

May import `connectors` and `kpi`; never any other package of the gateway.
"""
