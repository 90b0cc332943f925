"""The elastic-net penalty as a separable function of the solver's coordinates.

The user-facing penalty (DESIGN.md section 1) is

    alpha * sum_j v_j * ( l1_ratio * |k_j w_j| + (1 - l1_ratio) / 2 * (k_j w_j)^2 ),

with ``k_j = sd_j`` when ``standardize`` else 1. The solvers work in scaled
coordinates ``u_j = sd_j * w_j`` (better conditioned, whatever ``standardize``
says), where the penalty is

    P(u) = sum_j a_j |u_j| + c_j / 2 * u_j^2,
    a_j = alpha * l1_ratio * v_j * k_j / sd_j,
    c_j = alpha * (1 - l1_ratio) * v_j * (k_j / sd_j)^2.

Coordinates with ``a_j = c_j = 0`` are unpenalised; coordinates in ``fixed``
(constant columns) are held at zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .losses import get_loss


def soft_threshold(z, threshold):
    """S(z, t) = sign(z) * max(|z| - t, 0), elementwise."""
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


@dataclass(frozen=True)
class ElasticNetPenalty:
    """P(u) = sum_j a_j |u_j| + c_j / 2 u_j^2, with ``fixed`` coordinates held at 0."""

    l1: np.ndarray
    l2: np.ndarray
    fixed: np.ndarray

    # The masks are computed once per penalty: a solver asks for them at every step
    # (a path's point builds its penalty once and takes several steps).
    @cached_property
    def unpenalised(self):
        """Free coordinates with no penalty at all (their gradient must vanish)."""
        return (self.l1 == 0) & (self.l2 == 0) & ~self.fixed

    @cached_property
    def _pure_l1(self):
        return (self.l2 == 0) & (self.l1 > 0) & ~self.fixed

    @cached_property
    def _ridge(self):
        return (self.l2 > 0) & ~self.fixed

    @cached_property
    def penalised(self):
        """Free coordinates with an L1 or a ridge part."""
        return ~self.unpenalised & ~self.fixed

    @cached_property
    def has_pure_l1(self):
        """Whether any free coordinate has an L1 part and no ridge part."""
        return bool(np.any(self._pure_l1))

    @cached_property
    def has_ridge(self):
        """Whether any free coordinate has a ridge part."""
        return bool(np.any(self._ridge))

    @cached_property
    def has_l1(self):
        """Whether any free coordinate has an L1 part (else nothing is sparse)."""
        return bool(np.any(self.l1[~self.fixed] > 0))

    #: The masks above depend on which weights are zero only: the same for every
    #: positive multiple of the penalty (:meth:`scaled`).
    _MASKS = ("unpenalised", "_pure_l1", "_ridge", "penalised", "has_l1", "has_ridge",
              "has_pure_l1")

    def scaled(self, ratio):
        """The penalty times ``ratio > 0`` (the same problem at another alpha), with its
        masks, computed here once, handed on: along a path every point builds its
        penalty this way from the path's, and recomputing them cost several p-vector
        operations per point."""
        out = ElasticNetPenalty(self.l1 * ratio, self.l2 * ratio, self.fixed)
        if ratio > 0:
            out.__dict__.update((key, getattr(self, key)) for key in self._MASKS)
        return out

    def subset(self, idx):
        return ElasticNetPenalty(self.l1[idx], self.l2[idx], self.fixed[idx])

    def value(self, u):
        used = np.flatnonzero(u)  # solutions are sparse: only their support counts
        u, l1, l2 = u[used], self.l1[used], self.l2[used]
        return float(l1 @ np.abs(u) + 0.5 * (l2 @ (u * u)))

    def prox(self, z, step):
        """argmin_u  (u - z)^2 / (2 step) + P(u)  =  S(z, step a) / (1 + step c)."""
        out = soft_threshold(z, step * self.l1) / (1.0 + step * self.l2)
        out[self.fixed] = 0.0
        return out

    def violation(self, u, grad):
        """Distance of ``-grad`` to the subdifferential of P at ``u`` (0 at optimum)."""
        at_zero = u == 0
        moving = np.abs(grad + self.l1 * np.sign(u) + self.l2 * u)
        resting = np.maximum(np.abs(grad) - self.l1, 0.0)
        out = np.where(at_zero, resting, moving)
        out[self.fixed] = 0.0
        return out

    def dual_scaling(self, grad):
        """Largest kappa in (0, 1] with |kappa grad_j| <= a_j on pure-L1 coordinates.

        Pure-L1 coordinates (c_j = 0 < a_j) have a conjugate that is the
        indicator of |q| <= a_j; ridge parts have a finite conjugate everywhere.
        """
        if not self.has_pure_l1:
            return 1.0
        pure_l1 = self._pure_l1
        g = np.abs(grad[pure_l1])
        a = self.l1[pure_l1]
        over = g > a
        if not np.any(over):
            return 1.0
        return float(min(1.0, np.min(a[over] / g[over])))

    def conjugate(self, q):
        """sum_j P_j*(q_j) over penalised free coordinates, assuming feasibility.

        P_j*(q) = max(|q| - a_j, 0)^2 / (2 c_j) when c_j > 0, and 0 for pure-L1
        coordinates (the caller scales q so that |q_j| <= a_j there).
        """
        excess = np.abs(q)
        excess -= self.l1
        np.maximum(excess, 0.0, out=excess)
        excess *= excess
        return float(excess @ self._half_inverse_l2)

    @cached_property
    def _half_inverse_l2(self):
        """``1 / (2 c_j)`` on ridge coordinates, 0 elsewhere (:meth:`conjugate`)."""
        out = np.zeros_like(self.l2)
        ridge = self._ridge
        out[ridge] = 0.5 / self.l2[ridge]
        return out


def build_penalty(alpha, l1_ratio, penalty_factor, sd, standardize, fixed):
    """Penalty in the scaled coordinates ``u = sd * w`` (see the module docstring)."""
    ratio = np.ones_like(sd) if standardize else 1.0 / np.where(fixed, 1.0, sd)
    l1 = alpha * l1_ratio * penalty_factor * ratio
    l2 = alpha * (1.0 - l1_ratio) * penalty_factor * ratio * ratio
    l1 = np.where(fixed, 0.0, l1)
    l2 = np.where(fixed, 0.0, l2)
    return ElasticNetPenalty(l1.astype(np.float64), l2.astype(np.float64), fixed.copy())


COMPAT_MODES = (False, True, "glmnet", "spark")


def peer_to_native(alpha, l1_ratio, *, loss, sd_y, variance_correction=1.0):
    """Map glmnet's (lambda, alpha) / Spark MLlib's (regParam, elasticNetParam) onto ours.

    For the squared loss both peers solve on ``y / sd_y`` and scale back, which
    divides the ridge part of the penalty by the label's standard deviation.
    Spark MLlib's iterative solvers (l-bfgs, OWLQN) moreover standardize the
    features (and the label) with the *sample* standard deviation, i.e. they
    multiply every ``sd_j`` by ``c = sqrt(W / (W - sum s^2 / W))`` (``sqrt(n / (n - 1))``
    without weights; pass ``variance_correction = c``); glmnet and Spark's
    "normal" solver use the population one (``c = 1``). On our objective the
    same solution has

        l1 part:    alpha * l1_ratio * c
        ridge part: alpha * (1 - l1_ratio) * c^2 / (sd_y * c)   (squared loss)
                    alpha * (1 - l1_ratio) * c^2                (logistic loss)

    returned as ``(alpha', l1_ratio')`` with ``alpha' = l1 part + ridge part``.
    """
    c = float(variance_correction)
    l1_part = alpha * l1_ratio * c
    ridge_part = alpha * (1.0 - l1_ratio) * c * c
    scale = get_loss(loss).peer_ridge_scale(sd_y, c)
    if ridge_part > 0 and scale != 1.0:
        if sd_y <= 0:
            raise ValueError("glmnet_compat needs a label with non-zero standard deviation")
        ridge_part /= scale
    native = l1_part + ridge_part
    if native == 0:
        return 0.0, l1_ratio
    return native, l1_part / native


def native_to_peer(alpha, l1_ratio, *, loss, sd_y, variance_correction=1.0):
    """The inverse of :func:`peer_to_native`: glmnet's (lambda, alpha) or Spark
    MLlib's (regParam, elasticNetParam) that solve our ``(alpha, l1_ratio)``.

    With ``c = variance_correction``: ``lambda * alpha_peer = alpha l1_ratio / c`` and
    ``lambda (1 - alpha_peer) = alpha (1 - l1_ratio) sd_y / c`` (squared loss) or
    ``alpha (1 - l1_ratio) / c^2`` (logistic loss).
    """
    c = float(variance_correction)
    l1_part = alpha * l1_ratio / c
    ridge_part = alpha * (1.0 - l1_ratio) / (c * c)
    ridge_part *= get_loss(loss).peer_ridge_scale(sd_y, c)
    lam = l1_part + ridge_part
    if lam == 0:
        return 0.0, l1_ratio
    return lam, l1_part / lam
