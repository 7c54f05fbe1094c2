"""The stored Sobol points are scipy's unscrambled Sobol points, in every dimension, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from mipd_engine.sobol_points import MAX_DIMENSION, sobol_points


@pytest.mark.parametrize("dimension", [*range(1, MAX_DIMENSION + 1), MAX_DIMENSION + 3])
def test_the_points_are_scipys_unscrambled_sobol_points(dimension: int) -> None:
    expected = qmc.Sobol(d=dimension, scramble=False).random_base2(6)[1:]
    assert np.array_equal(sobol_points(dimension), expected)
