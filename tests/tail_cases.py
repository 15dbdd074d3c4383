"""A weighted VaR case where the total probability depends on the order it is summed in (shared by
tests/test_kernels_vs_reference.py and tests/test_book.py)."""

from __future__ import annotations

import numpy as np

from marginkernel.reference import LEVEL_RTOL


def level(confidence: float) -> float:
    """The quantile level at `confidence` (cpp/src/select.hpp tail_level)."""
    return (1.0 - confidence) * (1.0 - LEVEL_RTOL)


def order_dependent_case(n: int) -> tuple[np.ndarray, float]:
    """Probabilities and a confidence for n scenarios whose P&L sorts as n - 1, ..., 2, 1, 0.

    Scenarios 0 and 1 have probability 1, the others 0.6 * 2**-53 each: summed in sorted order (the
    small ones first) those add up, summed in scenario order (after 2.0) each is lost, so the two
    totals differ by about n / 2 ulps. The confidence puts the level between scenario 1's cumulative
    probability divided by the one total and by the other: NumPy (the sorted-order total) takes
    scenario 0, a scenario-order total would take scenario 1."""
    probability = np.concatenate([[1.0, 1.0], np.full(n - 2, 0.6 * 2.0**-53)])
    run = 0.0
    for s in range(n - 1, 0, -1):  # sorted order, up to scenario 1
        run += float(probability[s])
    sorted_total, scenario_total = run + 1.0, float(np.cumsum(probability)[-1])
    assert scenario_total == 2.0 < sorted_total
    confidence = 1.0 - (run / sorted_total + run / scenario_total) / 2.0
    while level(confidence) <= run / sorted_total:
        confidence = float(np.nextafter(confidence, 0.0))
    while level(confidence) > run / scenario_total:
        confidence = float(np.nextafter(confidence, 1.0))
    assert run / sorted_total < level(confidence) <= run / scenario_total
    return probability, confidence
