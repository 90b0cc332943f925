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

Groups (the one-hot columns of a categorical feature) are penalised as one:
with ``G`` a group of ``m`` coordinates, all sharing ``a_G`` and ``c_G``,

    P_G(u) = a_G ||u_G||_2 + c_G / 2 ||u_G||_2^2,    a_G = alpha l1_ratio v sqrt(m),

the group lasso with the usual ``sqrt(m)`` weight plus the elastic net's ridge
part, so that a group is selected or dropped whole. Every formula below is
written with the *magnitude* of a coordinate, ``|u_j|`` or, in a group, the
group's norm ``||u_G||`` (:meth:`ElasticNetPenalty.magnitude`): the
soft-threshold becomes the block soft-threshold
``u_G = z_G max(1 - t a_G / ||z_G||, 0)``, the dual norm of the L1 part the
largest ``||g_G|| / a_G``, and a group of one is an ordinary coordinate.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np

from .losses import get_loss


def soft_threshold(z, threshold):
    """S(z, t) = sign(z) * max(|z| - t, 0), elementwise."""
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


@dataclass(frozen=True)
class ElasticNetPenalty:
    """P(u) = sum_j a_j |u_j| + c_j / 2 u_j^2, with ``fixed`` coordinates held at 0.

    ``groups``: None, or a group number per coordinate (-1: a coordinate of its
    own); the coordinates of a group share their ``a`` and ``c`` and are
    penalised through the norm of the group (see the module docstring)."""

    l1: np.ndarray
    l2: np.ndarray
    fixed: np.ndarray
    groups: Optional[np.ndarray] = None

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
        out = ElasticNetPenalty(self.l1 * ratio, self.l2 * ratio, self.fixed, self.groups)
        if ratio > 0:
            out.__dict__.update((key, getattr(self, key)) for key in self._MASKS)
        # the groups' bookkeeping does not depend on the weights at all
        out.__dict__.update((key, self.__dict__[key]) for key in self._GROUPS
                            if key in self.__dict__)
        return out

    def subset(self, idx):
        return ElasticNetPenalty(self.l1[idx], self.l2[idx], self.fixed[idx],
                                 None if self.groups is None else self.groups[idx])

    def with_fixed(self, mask):
        """The same penalty with the coordinates of ``mask`` held at zero too."""
        return ElasticNetPenalty(self.l1, self.l2, self.fixed | mask, self.groups)

    def with_free_coordinate(self):
        """The penalty with one unpenalised coordinate appended (an intercept)."""
        return ElasticNetPenalty(np.append(self.l1, 0.0), np.append(self.l2, 0.0),
                                 np.append(self.fixed, False),
                                 None if self.groups is None else np.append(self.groups, -1))

    # ---- groups ---------------------------------------------------------------------
    _GROUPS = ("grouped", "_members", "_group_of", "_free_members")

    @cached_property
    def grouped(self):
        """Whether some coordinates are penalised as a group."""
        return self.groups is not None and bool(np.any(self.groups >= 0))

    @cached_property
    def _members(self):
        """Positions of the grouped coordinates."""
        return np.flatnonzero(self.groups >= 0)

    @cached_property
    def _group_of(self):
        """Each grouped coordinate's group, numbered 0 .. (groups here) - 1."""
        return np.unique(self.groups[self._members], return_inverse=True)[1]

    @cached_property
    def _free_members(self):
        """Per group, its members not held at zero."""
        return np.bincount(self._group_of, ~self.fixed[self._members])

    def _group_norms(self, v):
        """Per group, the norm of ``v`` over its free members."""
        part = v[self._members]
        part = np.where(self.fixed[self._members], 0.0, part * part)
        return np.sqrt(np.bincount(self._group_of, part))

    def _group_weights(self, w):
        """Per group, the weight ``w`` its free members share (0 for a group held at 0)."""
        free = ~self.fixed[self._members]
        total = np.bincount(self._group_of, np.where(free, w[self._members], 0.0))
        return total / np.maximum(self._free_members, 1)

    def whole_groups(self, idx, within):
        """The coordinates ``idx`` (sorted) with the other members of their groups that
        are in ``within``: a working set holds a group whole or not at all."""
        if not self.grouped:
            return idx
        touched = self.groups[idx]
        touched = touched[touched >= 0]
        if touched.size == 0:
            return idx
        within = np.asarray(within)
        extra = within[np.isin(self.groups[within], touched)]
        return np.union1d(idx, extra)

    def magnitude(self, v):
        """``|v_j|``, or in a group the norm ``||v_G||`` of its free coordinates, per
        coordinate: what the L1 weight ``a_j`` bounds in every optimality condition."""
        out = np.abs(v)
        if self.grouped:
            out[self._members] = self._group_norms(v)[self._group_of]
        return out

    def value(self, u):
        if self.grouped:  # each group's a_G ||u_G|| once, the others' a_j |u_j|
            single = np.where(self.groups < 0, self.l1, 0.0)
            return float(single @ np.abs(u) + self._group_weights(self.l1) @ self._group_norms(u)
                         + 0.5 * (self.l2 @ (u * u)))
        used = np.flatnonzero(u)  # solutions are sparse: only their support counts
        u, l1, l2 = u[used], self.l1[used], self.l2[used]
        return float(l1 @ np.abs(u) + 0.5 * (l2 @ (u * u)))

    def prox(self, z, step):
        """argmin_u  (u - z)^2 / (2 step) + P(u)  =  S(z, step a) / (1 + step c), with
        ``S(z, t) = z max(1 - t / |z|, 0)`` and ``|z|`` the magnitude (a group's norm)."""
        if self.grouped:
            size = self.magnitude(z)
            shrink = np.maximum(1.0 - np.divide(step * self.l1, size, out=np.ones_like(size),
                                                where=size > 0), 0.0)
            out = z * shrink / (1.0 + step * self.l2)
        else:
            out = soft_threshold(z, step * self.l1) / (1.0 + step * self.l2)
        out[self.fixed] = 0.0
        return out

    def violation(self, u, grad):
        """Distance of ``-grad`` to the subdifferential of P at ``u`` (0 at optimum): at
        zero the excess of ``grad``'s magnitude over ``a``; elsewhere the magnitude of
        ``grad + a u / |u| + c u`` (``u / |u|`` the sign, or ``u_G / ||u_G||``)."""
        if self.grouped:
            size = self.magnitude(u)
            direction = np.divide(u, size, out=np.zeros_like(u), where=size > 0)
            moving = self.magnitude(grad + self.l1 * direction + self.l2 * u)
            resting = np.maximum(self.magnitude(grad) - self.l1, 0.0)
            out = np.where(size == 0, resting, moving)
        else:
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
        g = self.magnitude(grad)[pure_l1]
        a = self.l1[pure_l1]
        over = g > a
        if not np.any(over):
            return 1.0
        return float(min(1.0, np.min(a[over] / g[over])))

    def conjugate(self, q):
        """sum_j P_j*(q_j) over penalised free coordinates, assuming feasibility.

        P_j*(q) = max(|q| - a_j, 0)^2 / (2 c_j) when c_j > 0, and 0 for pure-L1
        coordinates (the caller scales q so that |q_j| <= a_j there). A group's is
        ``max(||q_G|| - a_G, 0)^2 / (2 c_G)``, counted once.
        """
        excess = np.abs(q)
        excess -= self.l1
        np.maximum(excess, 0.0, out=excess)
        excess *= excess
        if not self.grouped:
            return float(excess @ self._half_inverse_l2)
        excess[self._members] = 0.0
        groups = np.maximum(self._group_norms(q) - self._group_weights(self.l1), 0.0)
        return float(excess @ self._half_inverse_l2
                     + (groups * groups) @ self._group_weights(self._half_inverse_l2))

    @cached_property
    def _half_inverse_l2(self):
        """``1 / (2 c_j)`` on ridge coordinates, 0 elsewhere (:meth:`conjugate`)."""
        out = np.zeros_like(self.l2)
        ridge = self._ridge
        out[ridge] = 0.5 / self.l2[ridge]
        return out


def build_penalty(alpha, l1_ratio, penalty_factor, sd, standardize, fixed, groups=None):
    """Penalty in the scaled coordinates ``u = sd * w`` (see the module docstring).

    ``groups`` (a group number per coordinate, -1 for none) weighs each group's L1
    part by ``sqrt(m)``, ``m`` its size. A group's coordinates are scaled by their
    own ``sd``: standardized, the group norm is ``||sd_G w_G||``; not standardized
    the solver's coordinates of a group are its coefficients (the caller passes
    ``sd = 1`` there, :func:`group_scale`), the norm ``||w_G||``."""
    ratio = np.ones_like(sd) if standardize else 1.0 / np.where(fixed, 1.0, sd)
    factor = np.asarray(penalty_factor, dtype=np.float64)
    if groups is not None and np.any(groups >= 0):
        members = groups >= 0
        sizes = np.bincount(groups[members])
        factor = factor.copy()
        factor[members] *= np.sqrt(sizes[groups[members]])
    l1 = alpha * l1_ratio * factor * ratio
    l2 = alpha * (1.0 - l1_ratio) * penalty_factor * ratio * ratio
    l1 = np.where(fixed, 0.0, l1)
    l2 = np.where(fixed, 0.0, l2)
    return ElasticNetPenalty(l1.astype(np.float64), l2.astype(np.float64), fixed.copy(),
                             None if groups is None else np.asarray(groups, dtype=np.intp))


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
