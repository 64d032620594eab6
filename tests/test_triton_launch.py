"""Host-side launch arithmetic of the Triton kernels (plain Python, no Triton needed)."""

from __future__ import annotations

import math
from fractions import Fraction

from weathergnn.ops.triton import cdiv, next_power_of_2, row_splits


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


def test_row_splits_cover_the_rows_in_whole_blocks():
    """Against brute force: the splits tile [0, rows) in steps of whole blocks, none empty, at most ``wanted``."""
    for rows in list(range(1, 200)) + [389_340, 3_114_720]:
        for block in (1, 16, 64, 1024):
            for wanted in (1, 3, 16, 264):
                splits, per = row_splits(rows, block, wanted)
                starts = range(0, rows, per)
                assert per % block == 0 and len(starts) == splits <= wanted
                assert all(min(rows, s + per) > s for s in starts)
