"""The reduction-rounding seam: inert in plain runs, exact in what it measures."""

import numpy as np
import pytest

from reference.functional import normalization as fn
from reference.functional.rounding import partial_sum_magnitude, sampling, statistic


def test_statistic_is_the_identity_without_a_sampler():
    mean = np.array([[1.5]])
    assert statistic(mean, np.ones((1, 4)), (1,)) is mean


def test_sampling_routes_every_statistic_and_is_undone_after_the_block():
    seen = []

    def shift(mean, terms, axes):
        seen.append((terms.shape, axes))
        return mean + 1.0

    x = np.arange(12.0).reshape(3, 4)
    plain = fn.layer_norm(x, 4)
    with sampling(shift):
        shifted = fn.layer_norm(x, 4)
    assert seen == [((3, 4), (1,)), ((3, 4), (1,))]  # the mean, then the variance
    assert not np.allclose(shifted, plain)
    np.testing.assert_array_equal(fn.layer_norm(x, 4), plain)


@pytest.mark.parametrize("axes", [(1,), (0, 2), (1, 2)])
def test_partial_sum_magnitude_is_the_partial_sums_rms_over_m(axes):
    rng = np.random.default_rng(0)
    terms = rng.standard_normal((3, 4, 5))
    got = partial_sum_magnitude(terms, axes)
    kept = [a for a in range(3) if a not in axes]
    rows = np.moveaxis(terms, kept, list(range(len(kept)))).reshape(
        *[terms.shape[a] for a in kept], -1
    )  # (kept..., m), the reduced axes in order
    for index in np.ndindex(*rows.shape[:-1]):
        row = rows[index]
        expected = np.sqrt(sum(row[: k + 1].sum() ** 2 for k in range(row.size))) / row.size
        full = list(index)
        for a in axes:
            full.insert(a, 0)
        assert got[tuple(full)] == pytest.approx(expected, rel=1e-12)


def test_a_constant_row_has_a_partial_sum_magnitude_near_root_m_over_root_3():
    m, b = 256, 0.0249
    got = partial_sum_magnitude(np.full((1, m), b), (1,))[0, 0]
    assert got == pytest.approx(b * np.sqrt(m * (m + 1) * (2 * m + 1) / 6) / m)
    assert 0.5 * np.sqrt(m / 3) * b < got < 2 * np.sqrt(m / 3) * b
