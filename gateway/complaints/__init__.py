"""The unified complaint record (records.md): its tables, its validation (`records`, the one validator), its
status from its events, and personal data (masking, the audit of clear reads).

May import `gateway.core` and `gateway.units`.
"""
