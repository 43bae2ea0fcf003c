"""Complaint flags to the credit system and incidents to emergency command: the rules (`rules`), early
warning (`alerts`), incidents escalated by hand (`incidents`), all their tables (`models`), reading and
re-homing stored flags (`store`), the transactional outbox and its delivery (`outbox`, `dispatch`), and
their metrics.

May import `gateway.core`, `gateway.units`, `gateway.complaints`.
"""
