"""Pointwise data-fit terms of the elastic-net objective.

A loss is a function ``l(y, eta)`` of one label and one linear predictor
``eta = b + x.w``. The objective's data term is the weighted mean

    L(b, w) = (1 / W) * sum_i s_i * l(y_i, eta_i),    W = sum_i s_i,

so a partition contributes additive sums ``sum s_i l``, ``sum s_i l'`` and
``sum s_i l''`` (derivatives in ``eta``). That is all an engine needs to know.

Losses here:

- ``squared``:  l = (y - eta)^2 / 2,                  l' = eta - y,       l'' = 1
- ``logistic``: l = log(1 + exp(eta)) - y * eta,      l' = sigmoid(eta) - y, l'' = p (1 - p)
  with y in {0, 1}.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(eta):
    """Numerically stable logistic function."""
    out = np.empty_like(eta, dtype=np.float64)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class Squared:
    """l(y, eta) = (y - eta)^2 / 2."""

    name = "squared"
    #: Upper bound of l'' (the curvature), used for Lipschitz estimates.
    max_curvature = 1.0

    @staticmethod
    def value(y, eta):
        r = y - eta
        return 0.5 * r * r

    @staticmethod
    def derivative(y, eta):
        return eta - y

    @staticmethod
    def curvature(y, eta):
        return np.ones_like(eta, dtype=np.float64)

    @staticmethod
    def null_intercept(y_mean):
        """The intercept b0 minimising L(b, 0) given the weighted mean label."""
        return y_mean

    @staticmethod
    def conjugate_slack(loss_value, kappa):
        """Exact ``F*(-kappa theta) - kappa F*(-theta)`` correction term.

        See :func:`elasticnet_dist.problem.duality_gap`: for the squared loss the
        conjugate is quadratic in the dual scaling ``kappa`` and the gap term
        that depends on it equals ``(1 - kappa)^2 L``.
        """
        return (1.0 - kappa) ** 2 * loss_value


class Logistic:
    """l(y, eta) = log(1 + exp(eta)) - y * eta, y in {0, 1}."""

    name = "logistic"
    max_curvature = 0.25

    @staticmethod
    def value(y, eta):
        return np.logaddexp(0.0, eta) - y * eta

    @staticmethod
    def derivative(y, eta):
        return _sigmoid(eta) - y

    @staticmethod
    def curvature(y, eta):
        p = _sigmoid(eta)
        return p * (1.0 - p)

    @staticmethod
    def null_intercept(y_mean):
        """log-odds of the weighted mean label (finite only for 0 < mean < 1)."""
        return float(np.log(y_mean) - np.log1p(-y_mean))

    @staticmethod
    def conjugate_slack(loss_value, kappa):
        """Upper bound ``(1 - kappa) L`` from the convexity of the conjugate.

        ``F*`` is convex with ``F*(0) = -inf F = 0`` for labels in {0, 1}, so
        ``F*(-kappa theta) <= kappa F*(-theta)``; the gap stays a certificate.
        """
        return (1.0 - kappa) * loss_value


LOSSES = {"squared": Squared, "logistic": Logistic}


def get_loss(name):
    """Return the loss class for ``name`` or raise a ValueError listing the choices."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            "loss=%r is not supported; choose one of %s" % (name, sorted(LOSSES))
        ) from None
