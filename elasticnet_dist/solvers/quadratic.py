"""Driver-side solver for small dense elastic-net quadratic programs.

    minimise_x  q(x) = 1/2 x'Qx + r'x + sum_j a_j |x_j| + c_j / 2 x_j^2

with ``Q`` symmetric positive semi-definite (k x k, k = the working-set size).
This is the subproblem of the working-set and proximal Newton solvers, and
of every solve that runs on sufficient statistics: it never touches the data.

Method: accelerated proximal gradient (FISTA, step 1/lambda_max(Q), gradient
restart) to find the support and signs, then an exact *polish*: on the
support S with signs sigma the optimality conditions are linear,

    (Q_SS + diag(c_S)) x_S = -(r_S + a_S * sigma_S),

and the polished point is accepted when its signs agree and every coordinate
outside S satisfies |Q_jS x_S + r_j| <= a_j. Accepted polishes are exact to
rounding, which is what lets the project match scikit-learn and glmnet to
many digits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..penalty import ElasticNetPenalty


@dataclass
class QPResult:
    x: np.ndarray
    n_iter: int
    violation: float
    polished: bool


def _lipschitz(Q):
    if Q.shape[0] == 0:
        return 1.0
    lmax = float(np.linalg.eigvalsh(Q)[-1])
    return max(lmax, 1e-12 * max(1.0, float(np.max(np.abs(np.diag(Q))))), 1e-300)


def _polish(Q, r, penalty, x, tol):
    """Exact solve on the support and signs of ``x``; None when it fails the KKT check."""
    free = ~penalty.fixed
    support = free & ((x != 0) | penalty.unpenalised)
    idx = np.flatnonzero(support)
    sign = np.sign(x[idx])
    A = Q[np.ix_(idx, idx)] + np.diag(penalty.l2[idx])
    b = -(r[idx] + penalty.l1[idx] * sign)
    try:
        x_s = np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        x_s = np.linalg.lstsq(A, b, rcond=None)[0]
    if not np.all(np.isfinite(x_s)):
        return None
    pen_s = penalty.l1[idx] > 0
    if np.any(np.sign(x_s[pen_s]) != sign[pen_s]):
        return None
    cand = np.zeros_like(x)
    cand[idx] = x_s
    viol = penalty.violation(cand, Q @ cand + r)
    if float(np.max(viol, initial=0.0)) > tol:
        return None
    return cand


def solve_qp(Q, r, penalty: ElasticNetPenalty, x0=None, tol=1e-12, max_iter=20000,
             polish_every=25):
    """Minimise 1/2 x'Qx + r'x + P(x); stop when the KKT violation is <= ``tol``."""
    k = r.shape[0]
    x = np.zeros(k) if x0 is None else np.array(x0, dtype=np.float64)
    x[penalty.fixed] = 0.0
    if k == 0:
        return QPResult(x, 0, 0.0, True)
    step = 1.0 / _lipschitz(Q)
    polished = _polish(Q, r, penalty, x, tol)
    if polished is not None:
        return QPResult(polished, 0, 0.0, True)
    y = x.copy()
    t = 1.0
    viol = np.inf
    for it in range(1, max_iter + 1):
        grad_y = Q @ y + r
        x_new = penalty.prox(y - step * grad_y, step)
        if (y - x_new) @ (x_new - x) > 0:  # gradient restart (O'Donoghue & Candes)
            t = 1.0
            y = x_new
        else:
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            y = x_new + ((t - 1.0) / t_new) * (x_new - x)
            t = t_new
        x = x_new
        if it % polish_every == 0 or it == max_iter:
            viol = float(np.max(penalty.violation(x, Q @ x + r), initial=0.0))
            if viol <= tol:
                return QPResult(x, it, viol, False)
            polished = _polish(Q, r, penalty, x, tol)
            if polished is not None:
                return QPResult(polished, it, 0.0, True)
    return QPResult(x, max_iter, viol, False)
