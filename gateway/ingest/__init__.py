"""How records and units come in: the one way in for push, import and sync (`store`: the one validator of
`gateway.complaints.records`, the idempotent upsert, the `gateway_ingest_records_total` counter of
`metrics`), the JSON Lines import (`importer`), the platform's changes feed (`sync`), one handling event
(`events`) and the unit file (`units_file`, which re-homes what hangs on a moved unit). Storing a record
also derives its KPI facts and raises its flags, in the same transaction.

May import `gateway.core`, `gateway.units`, `gateway.complaints`, `gateway.reports`, `gateway.flags`.
"""
