"""Negative-binomial tails and deviance residuals (Poisson where the overdispersion is 0), elementwise."""

from __future__ import annotations

import numpy as np
from scipy import special

from nlp_service.anomaly.detectors.base import FloatArray


def nb_tail(
    x: FloatArray, mu: FloatArray, alpha: FloatArray, where: np.ndarray, *, upper: bool
) -> FloatArray:
    """``P(X >= x)`` (``upper``) or ``P(X <= x)`` under NB(mean ``mu``, var ``mu + alpha mu^2``), Poisson
    when ``alpha = 0``, via regularised incomplete gamma/beta functions; 1 where ``where`` is false."""
    out = np.ones_like(mu)
    if not where.any():
        return out
    k, m, a = x[where], mu[where], alpha[where]
    pois = a < 1e-8
    r = 1.0 / np.where(pois, 1.0, a)
    q = m / (r + m)  # NB "failure" probability: P(X <= k) = I_{1-q}(r, k + 1)
    if upper:
        safe = np.maximum(k, 1.0)
        tail = np.where(pois, special.gammainc(safe, m), special.betainc(safe, r, q))
        out[where] = np.where(k <= 0, 1.0, tail)
    else:
        out[where] = np.where(pois, special.gammaincc(k + 1.0, m), special.betainc(r, k + 1.0, 1.0 - q))
    return out


def nb_deviance_residual(x: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    """Signed square root of the NB (Poisson when ``alpha = 0``) unit deviance of ``x`` given ``mu``."""
    xlogx = np.where(x > 0, x * np.log(np.maximum(x, 1e-12) / mu), 0.0)
    pois = alpha < 1e-8
    r = 1.0 / np.where(pois, 1.0, alpha)
    nb_tail = (x + r) * np.log((x + r) / (mu + r))
    dev = 2.0 * np.where(pois, xlogx - (x - mu), xlogx - nb_tail)
    return np.sign(x - mu) * np.sqrt(np.maximum(dev, 0.0))
