"""The unified complaint record (records.md): its tables, its validation (`records`, the one validator), its
status from its events, personal data (masking, the audit of clear reads), and case leads suggested to the
enforcement system (`case_leads`).

May import `gateway.core` and `gateway.units`.
"""
