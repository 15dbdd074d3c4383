"""Test-suite settings shared by every test module."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Machines running the suite are shared and their timing varies by 10x under load: a property test
# must fail for a wrong value, never for a slow example. CI prints the seed of any failure.
settings.register_profile("marginkernel", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "marginkernel"))
