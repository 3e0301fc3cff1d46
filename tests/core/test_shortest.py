"""The compiled shortest round-trip decimal (metarepro._core.shortest, Ryu) writes for every double the text Python's
repr writes (NaN: an empty cell), on doubles of every exponent and digit count and on the cases where the two
algorithms' choices could part: bounds of the rounding interval (even and odd mantissas), ties, subnormals,
powers of 2 and 10 and their neighbours, and the points where repr switches to exponent notation."""

import numpy as np

from metarepro._core.shortest import repr_cells


def expected(x):
    return ["" if v != v else repr(v) for v in x.tolist()]


def test_boundary_cases_are_written_as_repr_writes_them():
    x = np.array([
        0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 4.35, 100.0, 123456789.0, 5e-324, -5e-324, 1e-323,
        2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308, np.inf, -np.inf, np.nan,
        1e-4, 9.999999999999999e-05, 1e-5, 0.0001234, 1e15, 1e16, 9999999999999998.0, 1.2345678901234567e16,
        1e22, 1e23, 2.0**53, 2.0**53 + 2, 9007199254740993.0, 123456789012345678.0, 1e100, 1e-100, 1e300, 1e-300,
    ])  # fmt: skip
    assert repr_cells(x) == expected(x)


def test_every_exponent_and_digit_count_is_written_as_repr_writes_it():
    rng = np.random.default_rng(21)
    powers = np.arange(-1074, 1024).astype(float)
    cases = [
        rng.integers(0, 0x7FF0000000000000, 200_000, dtype=np.uint64).view(np.float64),  # any finite bit pattern
        -rng.integers(0, 0x7FF0000000000000, 50_000, dtype=np.uint64).view(np.float64),
        rng.integers(0, 2**52, 20_000, dtype=np.uint64).view(np.float64),  # subnormals
        2.0**powers, np.nextafter(2.0**powers, np.inf), np.nextafter(2.0**powers, 0.0),
        *(np.round(rng.normal(size=5_000) * 10.0 ** rng.integers(-3, 6, 5_000), d) for d in range(18)),  # 1-17 digits
        10.0 ** np.arange(-323, 309).astype(float),
        np.nextafter(10.0 ** np.arange(-323, 309).astype(float), np.inf),
        np.nextafter(10.0 ** np.arange(-323, 309).astype(float), 0.0),
        rng.integers(-(10**6), 10**6, 50_000).astype(float) / 10.0 ** rng.integers(0, 8, 50_000),
    ]
    x = np.concatenate(cases)
    assert repr_cells(x) == expected(x)
