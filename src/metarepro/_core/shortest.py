"""Python's ``repr`` of many doubles at once: the shortest decimal that reads back as the same double, laid out as
``repr`` lays it out, computed by the Ryu algorithm (Adams 2018, PLDI; the reference d2s.c without 128-bit
integers) compiled by numba.

``repr`` (David Gay's dtoa, shortest mode) costs ~0.5 µs for a double that needs 17 digits, which is what a
computed yi, vi or CI bound needs: 3 s of the 7 s that writing a 10⁶-row effects.csv took. Both algorithms return
the shortest digit string that rounds to the double (a bound is accepted when the mantissa is even, as reading
rounds half to even) and, among several, the one nearest to it; the layout is ``repr``'s: fixed notation for a
decimal point position from -3 to 16, else ``d.ddde±XX``; ``.0`` after an integer. tests/core/test_shortest.py
compares every text with ``repr`` on ~600,000 doubles of every exponent and digit count and on the boundary cases
(a sweep of 60 million random doubles found no difference either). metarepro.jobs.files uses it for tables of
200,000 rows and more, where loading numba is repaid.
"""

from __future__ import annotations

import numpy as np
from numba import njit  # this module is imported only to write large tables (loading numba costs ~0.5 s)

MANTISSA_BITS = 52
BIAS = 1023
POW5_INV_BITCOUNT = 125
POW5_BITCOUNT = 125
WIDTH = 26  # bytes per text at most: "-1.2345678901234567e-308" and a separator


def _tables():
    """Ryu's tables of 5^i (i < 326) and 2^k/5^i (i < 342), each 125 bits split into low and high 64 bits."""
    mask = (1 << 64) - 1
    pow5 = np.empty((326, 2), dtype=np.uint64)
    for i in range(326):
        power = 5**i
        shift = power.bit_length() - POW5_BITCOUNT  # the 125 leading bits of 5^i
        value = power >> shift if shift > 0 else power << -shift
        pow5[i] = value & mask, value >> 64
    pow5_inv = np.empty((342, 2), dtype=np.uint64)
    for i in range(342):
        power = 5**i
        value = (1 << (power.bit_length() - 1 + POW5_INV_BITCOUNT)) // power + 1
        pow5_inv[i] = value & mask, value >> 64
    return pow5, pow5_inv


POW5_SPLIT, POW5_INV_SPLIT = _tables()


def repr_cells(x: np.ndarray) -> list[str]:
    """``repr`` of each double of ``x`` ("" for NaN), as :func:`repr` writes it: written as ASCII into one buffer,
    a line each, then decoded and split at once."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.size * WIDTH, dtype=np.uint8)
    end = _write_all(x.view(np.uint64), POW5_SPLIT, POW5_INV_SPLIT, out)
    return out[:end].tobytes().decode("ascii").split("\n")[:-1]


@njit(cache=True, nogil=True)
def _write_all(bits, pow5, pow5_inv, out):
    """Each double's text and a newline into ``out``; the number of bytes written."""
    at = 0
    digits = np.empty(20, dtype=np.uint8)
    for i in range(bits.size):
        at = _write_one(bits[i], pow5, pow5_inv, out, at, digits)
        out[at] = 10  # "\n"
        at += 1
    return at


@njit(cache=True)
def _write_one(b, pow5, pow5_inv, out, at, digits):
    one = np.uint64(1)
    sign = (b >> np.uint64(63)) != np.uint64(0)
    ieee_mantissa = b & ((one << np.uint64(MANTISSA_BITS)) - one)
    ieee_exponent = (b >> np.uint64(MANTISSA_BITS)) & np.uint64(0x7FF)
    if ieee_exponent == np.uint64(0x7FF):
        if ieee_mantissa != np.uint64(0):
            return at  # NaN: an empty cell
        if sign:
            out[at] = 45  # "-"
            at += 1
        out[at], out[at + 1], out[at + 2] = 105, 110, 102  # "inf"
        return at + 3
    if sign:
        out[at] = 45
        at += 1
    if ieee_exponent == np.uint64(0) and ieee_mantissa == np.uint64(0):
        out[at], out[at + 1], out[at + 2] = 48, 46, 48  # "0.0"
        return at + 3
    output, exponent = _shortest(ieee_mantissa, ieee_exponent, pow5, pow5_inv)
    # the digits of output, most significant first
    length = 0
    while output > np.uint64(0):
        digits[length] = np.uint8(48 + int(output % np.uint64(10)))
        output //= np.uint64(10)
        length += 1
    for j in range(length // 2):
        digits[j], digits[length - 1 - j] = digits[length - 1 - j], digits[j]
    point = length + exponent  # the decimal point after this many digits (repr's decpt)
    if point <= -4 or point > 16:
        out[at] = digits[0]
        at += 1
        if length > 1:
            out[at] = 46  # "."
            at += 1
            for j in range(1, length):
                out[at] = digits[j]
                at += 1
        out[at] = 101  # "e"
        e = point - 1
        out[at + 1] = 45 if e < 0 else 43
        at += 2
        e = -e if e < 0 else e
        if e >= 100:
            out[at] = 48 + e // 100
            at += 1
        out[at] = 48 + (e // 10) % 10
        out[at + 1] = 48 + e % 10
        return at + 2
    if point <= 0:
        out[at], out[at + 1] = 48, 46  # "0."
        at += 2
        for _ in range(-point):
            out[at] = 48
            at += 1
        for j in range(length):
            out[at] = digits[j]
            at += 1
        return at
    if point >= length:
        for j in range(length):
            out[at] = digits[j]
            at += 1
        for _ in range(point - length):
            out[at] = 48
            at += 1
        out[at], out[at + 1] = 46, 48  # ".0"
        return at + 2
    for j in range(point):
        out[at] = digits[j]
        at += 1
    out[at] = 46
    at += 1
    for j in range(point, length):
        out[at] = digits[j]
        at += 1
    return at


@njit(cache=True)
def _umul128(a, b):
    """The 128-bit product of two 64-bit integers: (low, high)."""
    lo32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo, a_hi, b_lo, b_hi = a & lo32, a >> s32, b & lo32, b >> s32
    b00, b01, b10, b11 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid1 = b10 + (b00 >> s32)
    mid2 = b01 + (mid1 & lo32)
    return ((mid2 & lo32) << s32) | (b00 & lo32), b11 + (mid1 >> s32) + (mid2 >> s32)


@njit(cache=True)
def _mul_shift(m, mul_lo, mul_hi, j):
    """(m · mul) >> j for a 125-bit mul (low, high) and j ≥ 64."""
    low1, high1 = _umul128(m, mul_hi)
    low0, high0 = _umul128(m, mul_lo)
    total = high0 + low1
    if total < high0:
        high1 += np.uint64(1)
    dist = np.uint64(j - 64)
    if dist == np.uint64(0):
        return total
    return (high1 << (np.uint64(64) - dist)) | (total >> dist)


@njit(cache=True)
def _pow5_factor(value):
    count = 0
    while value % np.uint64(5) == np.uint64(0):
        value //= np.uint64(5)
        count += 1
    return count


@njit(cache=True)
def _pow5bits(e):
    return ((e * 1217359) >> 19) + 1


@njit(cache=True)
def _shortest(ieee_mantissa, ieee_exponent, pow5, pow5_inv):
    """Ryu's d2d: the shortest digits (an integer) and the decimal exponent of a positive finite double."""
    one, two, ten = np.uint64(1), np.uint64(2), np.uint64(10)
    if ieee_exponent == np.uint64(0):
        e2 = 1 - BIAS - MANTISSA_BITS - 2
        m2 = ieee_mantissa
    else:
        e2 = int(ieee_exponent) - BIAS - MANTISSA_BITS - 2
        m2 = (one << np.uint64(MANTISSA_BITS)) | ieee_mantissa
    accept_bounds = (m2 & one) == np.uint64(0)
    mv = np.uint64(4) * m2
    mm_shift = np.uint64(1) if (ieee_mantissa != np.uint64(0) or ieee_exponent <= one) else np.uint64(0)
    vm_trailing_zeros = False
    vr_trailing_zeros = False
    if e2 >= 0:
        q = ((e2 * 78913) >> 18) - (1 if e2 > 3 else 0)  # log10(2^e2), less one above 3
        e10 = q
        k = POW5_INV_BITCOUNT + _pow5bits(q) - 1
        i = -e2 + q + k
        vr = _mul_shift(mv, pow5_inv[q, 0], pow5_inv[q, 1], i)
        vp = _mul_shift(mv + two, pow5_inv[q, 0], pow5_inv[q, 1], i)
        vm = _mul_shift(mv - one - mm_shift, pow5_inv[q, 0], pow5_inv[q, 1], i)
        if q <= 21:
            if mv % np.uint64(5) == np.uint64(0):
                vr_trailing_zeros = _pow5_factor(mv) >= q
            elif accept_bounds:
                vm_trailing_zeros = _pow5_factor(mv - one - mm_shift) >= q
            else:
                vp -= np.uint64(1) if _pow5_factor(mv + two) >= q else np.uint64(0)
    else:
        q = ((-e2 * 732923) >> 20) - (1 if -e2 > 1 else 0)  # log10(5^-e2), less one above 1
        e10 = q + e2
        i = -e2 - q
        k = _pow5bits(i) - POW5_BITCOUNT
        j = q - k
        vr = _mul_shift(mv, pow5[i, 0], pow5[i, 1], j)
        vp = _mul_shift(mv + two, pow5[i, 0], pow5[i, 1], j)
        vm = _mul_shift(mv - one - mm_shift, pow5[i, 0], pow5[i, 1], j)
        if q <= 1:
            vr_trailing_zeros = True
            if accept_bounds:
                vm_trailing_zeros = mm_shift == one
            else:
                vp -= one
        elif q < 63:
            vr_trailing_zeros = (mv & ((one << np.uint64(q)) - one)) == np.uint64(0)
    removed = 0
    last_removed = np.uint64(0)
    if vm_trailing_zeros or vr_trailing_zeros:
        while vp // ten > vm // ten:
            vm_trailing_zeros = vm_trailing_zeros and vm % ten == np.uint64(0)
            vr_trailing_zeros = vr_trailing_zeros and last_removed == np.uint64(0)
            last_removed = vr % ten
            vr //= ten
            vp //= ten
            vm //= ten
            removed += 1
        if vm_trailing_zeros:
            while vm % ten == np.uint64(0):
                vr_trailing_zeros = vr_trailing_zeros and last_removed == np.uint64(0)
                last_removed = vr % ten
                vr //= ten
                vp //= ten
                vm //= ten
                removed += 1
        if vr_trailing_zeros and last_removed == np.uint64(5) and vr % two == np.uint64(0):
            last_removed = np.uint64(4)  # exactly halfway: round to even
        up = (vr == vm and (not accept_bounds or not vm_trailing_zeros)) or last_removed >= np.uint64(5)
        return vr + (one if up else np.uint64(0)), e10 + removed
    round_up = False
    hundred = np.uint64(100)
    if vp // hundred > vm // hundred:
        round_up = vr % hundred >= np.uint64(50)
        vr //= hundred
        vp //= hundred
        vm //= hundred
        removed += 2
    while vp // ten > vm // ten:
        round_up = vr % ten >= np.uint64(5)
        vr //= ten
        vp //= ten
        vm //= ten
        removed += 1
    up = vr == vm or round_up
    return vr + (one if up else np.uint64(0)), e10 + removed
