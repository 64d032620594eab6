"""Host-side launch arithmetic of the Triton kernels (plain Python, no Triton needed)."""

from __future__ import annotations

import math
from fractions import Fraction

from weathergnn.ops.triton import cdiv, next_power_of_2


def test_cdiv_is_the_ceiling_of_the_exact_quotient():
    for a in range(0, 400):
        for b in range(1, 70):
            assert cdiv(a, b) == math.ceil(Fraction(a, b))
    assert cdiv(3_114_720, 128) == 24_334 and cdiv(2**40 + 1, 2**20) == 2**20 + 1


def test_next_power_of_2_is_the_smallest_power_not_below_n():
    for n in range(1, 5000):
        p = 1
        while p < n:
            p *= 2
        assert next_power_of_2(n) == p
    assert next_power_of_2(0) == 0  # as triton.next_power_of_2
    assert next_power_of_2(2**40 + 1) == 2**41
