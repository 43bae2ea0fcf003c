"""How records and units come in: validation and the idempotent upsert (`store`), the JSON Lines import
(`importer`), the platform's changes feed (`sync`) and the unit file (`units_file`). Storing a record also
derives its KPI facts and raises its flags, in the same transaction.

May import `gateway.core`, `gateway.units`, `gateway.complaints`, `gateway.reports`, `gateway.flags`.
"""
