"""The first 63 points of the unscrambled Sobol sequence, so that a fit needs no ``scipy.stats``.

``scipy.stats.qmc.Sobol(d, scramble=False).random_base2(6)[1:]`` (Joe and Kuo's direction numbers) gives the
same points: its import costs seconds of process start (all of ``scipy.stats``), more than a whole batch of
small fits. Every coordinate of these points is k/64; ``_COLUMNS[j]`` spells the 63 values of k of dimension
j + 1 in base64, one character each. Unscrambled Sobol points in d dimensions are the first d columns of the
points in more dimensions. Beyond ``MAX_DIMENSION`` the points come from scipy
(``tests/engine/test_sobol_points.py`` checks both against scipy).
"""

from __future__ import annotations

import numpy as np

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/"
_COLUMNS = (
    "WmGOue8CiySKqa46csMU+kEAgwQIoY23ZpJRxhBFl/VNtd75brLTzjD9fvPHnX1",
    "WGmOu8eKq4aCiSyU+Ek6cMsAgQwIo2YHn1X9fPv5bLrTzDjFlV/Nt7dRxBh3ZJp",
    "WGme8uOySiCKq4aU+EksMc6Y2oIAgQwjDzT5bLrHn1XvPf9pJZ3RxBhFlV/d7tN",
    "WGmuOe8SyCia4qKgAwQIo2YsMc6EkU+Z3pJRxBh/VlF7dNt9fPvnHX1Lr5bjDzT",
    "WmGOue8a4KqySCiIoY2AgwQsM6ckEU+9fvPHnX1jDTzrL5bRxhB3ZpJ/VFld7Nt",
    "WmG8euOKqa4SyiC+UEksM6cgAQwY2IoxRBhpJ3ZlFV/d7Nt5brLDjzTHnX1Pvf9",
    "WGmOu8eSyCi4aKqY2oIwQgA+UkEc6sMpJZ3hBxRlF/VtNd7Hn1X9fPvDjTzLr5b",
    "WmGuO8eySCi4aqKsM6cEk+UAgwQoI2YhBRxJpZ3Ntd7lFV/TzjDb5LrX1HnPvf9",
    "WmGuO8eySCi4aqKU+kEc6MsY2IoQwgA/VFl7dtN3ZpJxRBhX1HnPvf9TzjDb5Lr",
    "WmGe8OuKqa4ySCiAgwQY2IoU+kEsM6c3ZpJhBRxNtd7/VFl9fvPX1HnTzjDrL5b",
    "WmGuO8eiCSyKqa46csM+UEkgAQwIoY2Pvf9X1HnrL5bDjzTV/lFd7NtpJ3ZBhxR",
    "WmGOue84aqKSyiCQwgA2YoIU+kE6csMzTDjb5LrvP9fX1Hnd7Nt/VFlZ3JpxRBh",
    "WGmOu8eySiCa4qKgAwQoIY2Ms6cEkU+TzDj5bLrX1nHvPf9tNd7lF/VBhRxJp3Z",
    "WGme8uOySiCKq4agAwQ2YIoMs6c+UkE/VlFNt7d3ZJphBxRLr5bzTjDf9vP1XHn",
    "WmGOue8qK4aiCSyMsc6Ek+UY2IowQAg/VFld7NtBhxRJpZ3f9PvnH1XTzjD5brL",
    "WGmuOe8ySiC4aKq2YIowQgA+UkE6cMs7dNt/VlFxRhB3ZJp5bLrzTjDvPf91XHn",
    "WmGOue8qK4aiCSyoI2YgAQw6csMU+kEBhxRJpZ3/VFld7NtvP9fX1HnDjzTLrb5",
    "WGmuOe8qKa4CiSyc6sMU+EkIo2YgAwQ3ZJpxRhBtNd7FlV/b5rLTzDjHn1Xf9vP",
    "WmGuO8eySCi4aqKoI2YAgwQEk+UsM6cRxhBZ3Jpd7NtV/lFf9PvHnX1Lrb5jDTz",
    "WGm8eOuKq4aSyCi2YIoAgQwMs6cU+EkX1nHf9vPrLb5zTjDZ3pJhBxRtNd7/VlF",
    "WGm8eOuCiSy4aKqkE+Uc6sMY2oIgAwQLr5bTzDjPv9fHn1XxRhBpJZ3tNd7/VlF",
    "WmG8euOiCSya4KqwQAgoI2YMsc6U+kEjDTzb5Lr1XnH9fvPNtd7V/lFxRBhpJ3Z",
    "WGmOu8eCiSyKq4ac6sM+UkEgAwQoIY2RxBh3ZJpNt7dFlV/zTjDb5rLnHX1f9vP",
    "WGmuOe8ySiC4aKqc6sMU+EkQwAgY2oInHX19fPvDjTzrLb5Nt7dlF/VhBxRJp3Z",
    "WGmuOe8SyCia4qKY2oIQwAg+UkE6cMsBhRxpJZ3Nt7dlF/Vf9vPHn1XrLb5DjTz",
    "WmGuO8e4aqKySCiAgwQoI2YEk+UsM6cFl/VtN7dBhxRpJ3Z5brLzTDj1XnHvP9f",
    "WGmOu8ea4qKySiCAgQwIo2YkE+UsMc6BhRxJp3ZlF/VtNd71XHnPv9fb5rLzTjD",
    "WmGe8OuCiySa4KqsM6cU+kEwQAgIoY2HnX1vP9fTzjDrL5bd7NtFl/VhBRx3ZpJ",
    "WGm8eOuiCySa4qKEkU+6cMsY2oIgAwQ9fPv1XHnb5rLjDzT7dNtFlV/hBxRZ3pJ",
    "WmG8euOySCiqK4aMsc6U+kEgAQwY2IolFV/d7NtJpZ3RxhBvP9fnH1X5brLDjzT",
    "WGmOu8eSyCi4aKqQwAg2YIo6cMsU+EklF/VtNd7pJZ3hBxRrLb5jDzTf9vPnHX1",
    "WGm8eOuqKa4ySiCMs6cU+EkY2oIgAwQX1nHf9vPLr5bTzDjtNd7/VlF3ZJpBhRx",
    "WGmuOe84aKqySiC6cMs+UkE2YIowQgA/VlF7dNtxRhB3ZJpvPf91XHnzTjD5bLr",
    "WmGuO8eySCi4aqKwQAg2YoI6csM+UEkFl/VtN7dpJ3ZBhxRrL5bDjzT9fvPnH1X",
    "WmGe8Oua4KqCiySU+kEsM6cwQAgIoY2/VFlNtd7RxhBpJ3ZX1Hn9fvP5brLjDTz",
    "WmGe8OuSyiCqK4a+UEkMsc6Y2IoAgwQd7NtFl/VxRBhJpZ3Pvf9nH1X5brLjDTz",
    "WGme8uOCiSya4qKIo2YwQgAU+EksMc6nHX1Pv9fzTjDLr5bZ3pJBhRxlF/V7dNt",
    "WGmuOe8qKa4CiSy2YIowQgAsMc6EkU+pJZ3BhRx7dNt/VlFnHX19fPv5bLrzTjD",
    "WGmOu8eKq4aCiSy2YIoQwAgMs6cEkU+5bLrTzDjHn1X9fPv7dNtV/FlJp3ZBhRx",
    "WGmuOe8a4qKSyCiwQgA2YIoU+Ekc6sMTzDjb5rLvPf91XHnd7tNV/Fl3ZJpxRhB",
    "WGmuOe8a4qKSyCiQwAgY2oI+UkE6cMsTzDjb5rLvPf91XHn7dNt/VlFZ3pJRxBh",
    "WmGe8Ou4aqKiCSyMsc6+UEkIoY2wQAgX1Hn9fvPb5LrDjzTtN7dV/lFpJ3ZRxhB",
    "WGm8eOuqKa4ySiC+UkEsMc6AgQw2YIojDzTb5rLPv9fHn1XJp3ZRxBhd7tNlF/V",
    "WGmuOe8CiSyqKa4Y2oIQwAgkE+UMs6cjDzTLr5bX1nHPv9fFlV/tNd73ZJpxRhB",
    "WmGuO8eCiySqK4a2YoIwQAgEk+UsM6cpJ3ZBhxR/VFl7dtNnH1X9fvPzTDj5brL",
    "WGm8eOuKq4aSyCikE+Uc6sMwQgAoIY2Z3pJhBxRtNd7/VlFDjTz5bLrPv9fHn1X",
    "WGme8uOKq4aySiCIo2YwQgA6cMskE+UNt7d/VlF3ZJphBxR5bLrjDzTHn1XvPf9",
    "WGm8eOuKq4aSyCioIY2wQgAc6sMkE+UvPf9nHX1jDzTb5rLBhRx3ZJpV/FlNt7d",
    "WmG8euOSyiCKqa4IoY2QwgAEk+U6csM9fvP1XnHLrb5TzjDRxhBJpZ37dtNFl/V",
    "WmGOue84aqKSyiCY2IowQAgc6Ms+UEk5brLTzjD1XnHPvf9d7Nt/VFlZ3JpxRBh",
    "WGm8eOua4qKiCyS+UkEsMc6QwAgIo2YpJZ3xRhBNt7dV/FlDjTz5bLrf9vPX1nH",
    "WGmuOe8SyCia4qKY2oIQwAg+UkE6cMs9fPvnHX1Lr5bjDzThBxRJp3ZtNd7FlV/",
    "WmG8euOCiyS4aqK2YoIAgwQEk+U6csMzTDjrL5bnH1XvP9f/VFltN7dpJ3ZxRBh",
    "WGmOu8eySiCa4qKkE+UsMc6Io2YAgQwhBxRpJZ3Nt7dFlV/5bLrTzDjvPf9X1nH",
    "WGme8uOqKa4SyCigAwQ2YIoU+EksMc67dNtlF/VpJZ3RxBhjDzT5bLrPv9fnHX1",
    "WmGOue8SyiC4aqKsM6ckEU+gAQwoI2Y5brLTzjDPvf91XnHpJ3ZhBRxlFV/tN7d",
    "WGmuOe8SyCia4qKc6sMU+EkwQgA2YIozTjD5bLrX1nHPv9fRxBhZ3pJ7dNt/VlF",
    "WmGOue8a4KqySCiwQAgY2IoU+kE6csM7dtNV/lFZ3JpxRBhzTDjb5LrPvf91XnH",
    "WmGuO8e4aqKySCi+UEk6csMwQAg2YoIFl/VtN7dBhxRpJ3ZnH1X9fvPrL5bDjzT",
    "WmGuO8eKqa4iCSyQwgAY2IoEk+UsM6cBhxRpJ3ZV/lFd7NtHnX1f9Pv5brLzTDj",
    "WGm8eOua4qKiCySY2oIgAwQ6cMsEkU+jDzTb5rL9fPv1XHnFlV/7dNthBxRZ3pJ",
    "WmGOue84aqKSyiCY2IowQAgc6Ms+UEkX1HnvP9fb5LrzTDj3ZpJRxhB7dtNV/lF",
    "WmGuO8eSyiCa4KqAgwQoI2YMsc6kEU+nH1X9fvPjDTzLrb5xRBh3ZpJd7NtV/lF",
    "WmG8euOiCSya4Kq6csMEk+UgAQwY2IoTzjDLrb5nH1XvP9fRxhBJpZ3tN7d/VFl",
    "WmGOue8a4KqySCi6csMU+kEY2IowQAgV/lF7dtNxRBhZ3JpPvf91XnHzTDjb5Lr",
    "WmGe8OuKqa4ySCiwQAgIoY2kEU+6csMHnX1vP9f5brLjDTzhBRx3ZpJ/VFlNtd7",
    "WmGuO8eySCi4aqKsM6cEk+UAgwQoI2YlFV/Ntd7JpZ3hBRxPvf9X1Hnb5LrTzjD",
    "WmGe8OuCiySa4KqQwgAoI2YMsc6+UEkf9Pv1XnHb5LrDjzTpJ3ZRxhB/VFlNtd7",
    "WGmOu8eiCySqKa4Ms6cEkU+wQgAY2oIvPf9X1nHLr5bDjTzlF/VtNd73ZJpRxBh",
    "WmG8euOiCSya4KqAgwQ2YoIc6MskEU+pJ3ZxRBhV/lFNtd7vP9fnH1XLrb5TzjD",
    "WGme8uOSyCiqKa4EkU+c6sMIo2YwQgArLb5TzDjf9vP1XHnxRhBJp3Zd7tNFlV/",
    "WmG8euOKqa4SyiCEk+U6csMQwgAIoY2HnX1Pvf95brLDjzTV/lFNtd7BhxR3ZpJ",
    "WmGuO8eqK4aCiySoI2YAgwQ6csM+UEknH1X9fvP5brLzTDj3ZpJxRBhtN7dFl/V",
    "WmGuO8e4aqKySCiEk+UsM6cAgwQoI2YNtd7lFV/JpZ3hBRxPvf9X1HnTzjDb5Lr",
    "WmGOue8SyiC4aqKMsc6Ek+UAgwQIoY2Fl/VNtd7JpZ3BhxRPvf91XnH5brLTzjD",
    "WmG8euOa4KqiCSy+UEksM6cQwgAIoY2xRBhpJ3ZV/lFNtd75brLDjzTX1Hnf9Pv",
    "WGmuOe8a4qKSyCiY2oIQwAg6cMs+UkEb5rLTzDj1XHnvPf97dNt/VlFZ3pJRxBh",
    "WGmuOe8CiSyqKa4QwAgY2oIMs6ckE+U5bLrzTjD9fPvnHX1V/Fld7tNJp3ZhBxR",
    "WGmOu8ea4qKySiCwQgAY2oIU+Ek6cMsBhRxJp3ZlF/VtNd7nHX1f9vPLr5bDjTz",
    "WmGuO8ea4KqSyiCEk+UsM6cgAQwIoY21XnHvP9fb5LrTzjDFl/VtN7dhBRxJpZ3",
    "WmG8euOCiyS4aqKU+kEMsc6IoY2QwgApJ3ZxRBh/VFltN7djDTzb5LrX1Hnf9Pv",
    "WmGOue8a4KqySCiY2IowQAg6csMU+kE5brLTzjDX1HnvP9fd7Nt/VFl3ZpJRxhB",
    "WGme8uOCiSya4qKY2oIAgQwkE+U6cMsDjTzb5rL1XHnf9vPlF/V7dNtZ3pJBhRx",
    "WGmOu8eCiSyKq4aoIY2gAwQ+UkEc6sMd7tN/VlFhBxRpJZ3Lr5bDjTzPv9f1XHn",
    "WmGe8OuySCiKqa4gAQw2YoIMsc6+UEk3ZpJhBRx/VFlNtd7f9Pv1XnHLrb5zTDj",
    "WmG8euOCiyS4aqKwQAgoI2YsM6c+UEkhBRxZ3Jpd7NtlFV/HnX1Pvf9TzjDLrb5",
    "WmGe8Ou4aqKiCSyoI2YQwgAsM6cU+kE5brLjDTz1XnHf9PvtN7dV/lFpJ3ZRxhB",
    "WGm8eOuqKa4ySiCU+EkMs6cgAwQY2oIV/FlNt7dhBxRZ3pJ1XHn9fPvrLb5zTjD",
    "WGmuOe8qKa4CiSyQwAgY2oIkE+UMs6c1XHnvPf9rLb5DjTzRxBhZ3pJlF/VNt7d",
    "WmGOue8CiySKqa46csMU+kEAgwQIoY2Z3JpxRBhlFV/tN7db5LrzTDjf9PvnH1X",
    "WGmuOe8qKa4CiSyY2oIQwAgMs6ckE+UrLb5DjTz1XHnvPf9Nt7dlF/VZ3pJRxBh",
    "WmGe8OuqK4aSyiCgAQw2YoIU+kEsM6czTDjLrb59fvPX1HnNtd7/VFlZ3JpBhxR",
    "WGme8uOKq4aySiC6cMskE+UIo2YwQgAf9vP1XHnzTjDLr5blF/V7dNtxRhBJp3Z",
    "WGme8uO4aKqiCySEkU+c6sMAgQwY2oI9fPvX1nHDjTzb5rL7dNtlF/V3ZJphBxR",
    "WmG8euOySCiqK4aoI2YwQAgEk+U6csM7dtNFl/VxRBhpJ3ZrL5bzTDj9fvP1XnH",
    "WGm8eOu4aKqCiSyEkU+6cMsAgQw2YIoBhRx3ZJpFlV/7dNt5bLrDjTz1XHn9fPv",
    "WmGe8OuySCiKqa4Msc6+UEkgAQw2YoIb5LrDjzTPvf9nH1XpJ3ZRxhBFl/Vd7Nt",
    "WGme8uOiCyS4aKqIo2YwQgA+UkEMs6czTjDLr5bHn1XvPf9lF/V7dNt3ZJphBxR",
    "WGmOu8ea4qKySiCY2oIwQgA6cMsU+Ek5bLrTzDjX1nHvPf9d7tN/VlF3ZJpRxBh",
    "WmGuO8eySCi4aqK2YoIwQAg+UEk6csMJpZ3hBRxlFV/Ntd7HnX1f9PvjDTzLrb5",
)
MAX_DIMENSION = len(_COLUMNS)
N_POINTS = 63
_DECODE = {c: k for k, c in enumerate(_ALPHABET)}


def sobol_points(dimension: int) -> np.ndarray:
    """The Sobol points 1..63 (point 0 is the origin) in ``dimension`` dimensions, shape (63, dimension)."""
    if dimension > MAX_DIMENSION:
        from scipy.stats import qmc  # rare: only for more than MAX_DIMENSION random effects

        return qmc.Sobol(d=dimension, scramble=False).random_base2(6)[1:]
    columns = [[_DECODE[c] for c in _COLUMNS[j]] for j in range(dimension)]
    return np.array(columns, dtype=float).T.reshape(N_POINTS, dimension) / 64.0
