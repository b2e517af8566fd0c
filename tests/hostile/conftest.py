"""Hypothesis profiles for the hostile-input properties.

Under CI (the `CI` environment variable set) the search is derandomized, so a failure reproduces on every run and every
machine; locally it explores new examples each run and keeps failures in `.hypothesis/` to replay them first.
`HYPOTHESIS_PROFILE=thorough` searches longer (for a release, or after touching a validator).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Generators here build large, filtered values on purpose (huge strings, hostile mixes): not a health problem.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None, suppress_health_check=_SLOW_IS_FINE)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_SLOW_IS_FINE)
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=_SLOW_IS_FINE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
