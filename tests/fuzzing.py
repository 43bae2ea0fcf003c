"""Budgets of the property tests: a few examples in the suite, many under `make fuzz`
(HYPOTHESIS_PROFILE=fuzz). Each property test takes its settings from `budget`, so that the profile is
the one switch."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def budget(suite: int, fuzz: int) -> settings:
    """`suite` examples normally, `fuzz` under `make fuzz`; no deadline (a shared machine is not a timing
    oracle), one database and server shared by the examples of a test."""
    return settings(
        max_examples=fuzz if FUZZ else suite,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
        print_blob=True,
    )
