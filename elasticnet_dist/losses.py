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
    def dual_curvature(y, eta):
        """Not needed: the squared loss's conjugate term is exact (see conjugate_slack)."""
        return None

    @staticmethod
    def conjugate_slack(loss_value, kappa, dual_curvature=None):
        """The gap term that depends on the dual scaling ``kappa``: ``(1 - kappa)^2 L``.

        See :class:`elasticnet_dist.problem.Problem`: the squared loss's conjugate is
        quadratic in ``kappa``, so this is exact.
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
    def dual_curvature(y, eta):
        """Odds of the wrong label, ``exp((1 - 2y) eta)``: bounds the conjugate's curvature."""
        return np.exp(np.minimum((1.0 - 2.0 * y) * eta, 700.0))

    @staticmethod
    def conjugate_slack(loss_value, kappa, dual_curvature=None):
        """An upper bound of the gap term that depends on the dual scaling ``kappa``.

        Two bounds, the smaller is used (both keep the gap a certificate):

        - ``(1 - kappa) L``: ``F*`` is convex with ``F*(0) = -inf F = 0`` for
          labels in {0, 1}, so ``F*(-kappa theta) <= kappa F*(-theta)``;
        - ``(1 - kappa)^2 / (2 kappa) C`` with ``C = (1/W) sum s odds_wrong``: the
          second-order Taylor remainder of ``F*`` along the scaling, whose
          curvature per row is at most ``odds_wrong / kappa`` on the segment.

        The second is quadratic in ``1 - kappa``, so rounding in the gradient of
        the support no longer puts a floor under the gap.
        """
        bound = (1.0 - kappa) * loss_value
        if dual_curvature is not None and kappa > 0:
            bound = min(bound, (1.0 - kappa) ** 2 / (2.0 * kappa) * dual_curvature)
        return bound


LOSSES = {"squared": Squared, "logistic": Logistic}


def get_loss(name):
    """Return the loss class for ``name`` or raise a ValueError listing the choices."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            "loss=%r is not supported; choose one of %s" % (name, sorted(LOSSES))
        ) from None
