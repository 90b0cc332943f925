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
many digits. With group penalties (penalty.py) the optimality conditions of a
group are not linear on its support,

    (Q x + r)_G + a_G x_G / ||x_G|| + c_G x_G = 0,

but smooth while ``x_G != 0``: the polish is then Newton's method on the active
groups and coordinates (:func:`_group_polish`), accepted on the same test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dgesv, dposv

from ..penalty import ElasticNetPenalty


@dataclass
class QPResult:
    x: np.ndarray
    n_iter: int
    violation: float
    polished: bool


#: Up to this size lambda_max(Q) is computed exactly (``eigvalsh``, k^3 flops), above it
#: bounded by power iteration. Models with group penalties fall back to FISTA more
#: often (their polish is Newton's method, which a wrong active set can defeat): there
#: the power iteration pays above 50 (a search over 342 features with 242 one-hot
#: levels, before that polish existed: ``eigvalsh`` took 45% of the models' time, at a
#: mean size of 123).
EXACT_LIPSCHITZ_MAX, EXACT_LIPSCHITZ_MAX_GROUPED = 500, 50


def _lipschitz(Q, exact_max=EXACT_LIPSCHITZ_MAX):
    """lambda_max(Q): exact for small Q, a safe power-iteration bound for large Q."""
    k = Q.shape[0]
    if k == 0:
        return 1.0
    floor = 1e-12 * max(1.0, float(np.max(np.abs(np.diag(Q)))))
    if k <= exact_max:
        return max(float(np.linalg.eigvalsh(Q)[-1]), floor)
    v = np.random.default_rng(0).standard_normal(k)
    est = 0.0
    for _ in range(100):
        qv = Q @ v
        norm = float(np.linalg.norm(qv))
        if norm == 0.0:
            return floor
        new = norm / float(np.linalg.norm(v))
        v = qv / norm
        if abs(new - est) <= 1e-4 * new:
            est = new
            break
        est = new
    return max(1.02 * est, floor)  # power iteration approaches from below


#: Supports up to this size are solved directly (LU, k^3 / 3 flops); larger ones by
#: conjugate gradients warm-started at the current point (2 k^2 flops per step):
#: along a path the support changes little between points and CG needs a few
#: dozen steps, against k / 3 steps' worth of flops for the direct solve.
DIRECT_MAX = 200


#: A support holding at least this share of the working set is solved by CG on the
#: whole working-set matrix with the other coordinates held at zero, instead of on
#: a copy of its submatrix: along the CV benchmark's paths supports fill 87-96% of
#: the working set, and gathering the submatrix (k x k out of m x m, every polish
#: round) cost more than all the CG steps together.
MASKED_SHARE = 0.75


def _conjugate_gradients(Q, c, b, x0, tol, outside=None, Qx0=None):
    """Jacobi-preconditioned CG for the SPD system ``(Q + diag(c)) x = b`` from
    ``x0``; with ``outside`` (a mask) on the other coordinates only, those held
    at zero (``b`` and ``x0`` must be zero there). ``Qx0``: ``Q @ x0`` if known.
    Returns ``(x, Q @ x)`` when the true residual is below ``tol`` in every
    entry, else ``(None, None)``; the product is every row of ``Q`` (the
    caller's gradient needs them all). Handing the products on saves two of
    the six or so products of a typical polish round."""
    d = np.maximum(np.diag(Q) + c, 1e-300)
    if outside is not None:
        d[outside] = 1.0

    def operator(Qv, v):  # (Q + diag(c)) v from Q v, zero outside
        out = Qv + c * v
        if outside is not None:
            out[outside] = 0.0
        return out

    def apply(v):
        Qv = Q @ v
        return operator(Qv, v), Qv

    x = x0.copy()
    r = b - operator(Q @ x if Qx0 is None else Qx0, x)
    z = r / d
    direction = z.copy()
    rz = float(r @ z)
    for _ in range(max(25, b.shape[0] // 4)):
        if float(np.max(np.abs(r))) <= 0.5 * tol:
            break
        Ad = apply(direction)[0]
        curvature = float(direction @ Ad)
        if curvature <= 0:
            break
        step = rz / curvature
        x += step * direction
        r -= step * Ad
        z = r / d
        rz_new = float(r @ z)
        direction = z + (rz_new / rz) * direction
        rz = rz_new
    Ax, Qx = apply(x)
    return (x, Qx) if float(np.max(np.abs(b - Ax))) <= tol else (None, None)


def _linear_solve(Q, c, b, x0, tol, Qx0=None):
    """Solve the SPD system ``(Q + diag(c)) x = b``: Jacobi-preconditioned CG from
    ``x0`` (``Qx0 = Q @ x0`` if known) for large systems (accepted when the true
    residual is below ``tol`` in every entry), else, or when CG is slow, a direct
    solve. Returns ``(x, Q @ x)``, the product None after a direct solve."""
    if b.shape[0] > DIRECT_MAX and x0 is not None:
        x, Qx = _conjugate_gradients(Q, c, b, x0, tol, Qx0=Qx0)
        if x is not None:
            return x, Qx
    if b.shape[0] == 0:
        return b.copy(), None
    A = np.array(Q, dtype=np.float64)
    A.flat[::A.shape[0] + 1] += c
    _, _, x, info = dgesv(A, b)  # LAPACK directly: half of np.linalg.solve's time here
    if info == 0:
        return x, None
    try:  # singular
        return np.linalg.lstsq(A, b, rcond=None)[0], None
    except np.linalg.LinAlgError:  # not finite: the caller gives up on this system
        return np.full_like(b, np.nan), None


def _masked_solve(Q, c, b, x0, tol, support, Qx0=None):
    """:func:`_linear_solve` on the rows and columns ``support`` of ``Q`` without
    copying them out: CG on the whole of ``Q`` with every vector zero outside
    ``support`` (``b`` zero there; ``c``, ``x0`` full length; ``Qx0 = Q @ x0``,
    if known, only for an ``x0`` zero outside). Returns the solution on
    ``support`` and ``Q @ x`` (all rows, x zero outside), or ``(None, None)``
    when CG does not reach ``tol``."""
    x, Qx = _conjugate_gradients(Q, c, b, np.where(support, x0, 0.0), tol, outside=~support,
                                 Qx0=Qx0)
    return (None, None) if x is None else (x[support], Qx)


def _solve_on_signs(Q, r, penalty, sign, x0=None, tol=0.0, Qx0=None):
    """(x, crossed, Qx): x with x_S solving the linear KKT system on S = {sign != 0}
    plus the unpenalised coordinates, the coordinates of S whose solution has the
    wrong sign (crossed zero), and ``Q @ x`` when the solve gave it (else None);
    (None, None, None) when the system has no finite solution. ``x0`` (a nearby
    point, ``Qx0 = Q @ x0`` if known) and ``tol`` (the residual wanted) allow an
    iterative solve."""
    support = ~penalty.fixed & ((sign != 0) | penalty.unpenalised)
    idx = np.flatnonzero(support)
    if Qx0 is not None and (x0 is None or np.any(x0[~support])):
        Qx0 = None  # known for an x0 that is zero off the support only
    s = sign[idx]
    b = -(r[idx] + penalty.l1[idx] * s)
    x_s = Qx = None
    if DIRECT_MAX < idx.size < Q.shape[0] and x0 is not None \
            and idx.size >= MASKED_SHARE * Q.shape[0]:
        full_b = np.zeros_like(r)
        full_b[idx] = b
        x_s, Qx = _masked_solve(Q, penalty.l2, full_b, x0, tol, support, Qx0)
        x0 = None  # if CG did not get there, a direct solve
    if x_s is None:
        whole = idx.size == Q.shape[0]
        x_s, Qx = _linear_solve(Q if whole else Q[idx][:, idx], penalty.l2[idx], b,
                                None if x0 is None else x0[idx], tol,
                                None if x0 is None or Qx0 is None else Qx0[idx])
        Qx = Qx if whole else None  # a submatrix's product lacks the other rows
    if not np.all(np.isfinite(x_s)):
        return None, None, None
    crossed = np.zeros_like(sign, dtype=bool)
    crossed[idx] = (penalty.l1[idx] > 0) & (np.sign(x_s) != s)
    x = np.zeros_like(r)
    x[idx] = x_s
    return x, crossed, Qx


def _polish(Q, r, penalty, x, tol, sign_hint=None, rounds=12, Qx=None):
    """Exact solve on the support and signs of ``x``, as an active-set method;
    (x, violation) or None.

    ``sign_hint`` adds coordinates at zero with the sign they should take
    (``-sign(gradient)`` of violators). Each round solves the linear system on
    the current signs; coordinates whose solution crossed zero leave the set,
    and coordinates at zero that still violate their optimality condition
    (however slightly) join it with the sign of ``-gradient``. The best point
    is accepted when its violation is at most ``tol``; otherwise the caller
    iterates (FISTA) and polishes again. ``Qx``: ``Q @ x``, if known.
    """
    sign = np.sign(x)
    if sign_hint is not None:
        sign = np.where(sign == 0, sign_hint, sign)
    best = None
    guess = x
    for _ in range(rounds):
        cand, crossed, Qx = _solve_on_signs(Q, r, penalty, sign, guess, 0.5 * tol, Qx)
        if cand is None:
            break
        guess = cand
        if crossed.any():
            sign = np.where(crossed, 0.0, sign)
            continue
        grad = (Q @ cand if Qx is None else Qx) + r
        viol = penalty.violation(cand, grad)
        worst = float(np.max(viol, initial=0.0))
        if best is None or worst < best[1]:
            best = (cand, worst)
        if worst == 0.0:
            break
        joins = (cand == 0) & (viol > 0)
        if not joins.any():
            break
        sign = np.where(joins, -np.sign(grad), np.sign(cand))
    return best if best is not None and best[1] <= tol else None


def _group_polish(Q, r, penalty, x, tol, rounds=6):
    """Newton's method on the optimality conditions of the coordinates and groups
    active at ``x`` (non-zero, or unpenalised), the others held at zero, as an
    active-set method: after each solve the coordinates and groups at zero that
    violate their conditions join, started a step along ``-gradient``. (x,
    violation) when the result satisfies every condition to ``tol``, else None.

    On the active set ``A`` the conditions ``F(x) = (Qx + r)_A + a x_A / |x_A| + c x_A``
    (``|x_A|`` the magnitude: a group's norm, a coordinate's absolute value) have the
    Jacobian ``Q_AA + diag(c) + sum_G a_G / ||x_G|| (I - x_G x_G' / ||x_G||^2)``; a
    group whose norm or a coordinate whose sign a step would cross leaves the set."""
    free = ~penalty.fixed
    x = np.where(free, x, 0.0)
    active = free & ((penalty.magnitude(x) > 0) | penalty.unpenalised)
    best = None
    for _ in range(rounds):
        x, active = _newton_on_active(Q, r, penalty, x, active, tol)
        if x is None:
            break
        grad = Q @ x + r
        viol = penalty.violation(x, grad)
        worst = float(np.max(viol, initial=0.0))
        if best is None or worst < best[1]:
            best = (x, worst)
        if worst <= tol:
            break
        joins = free & ~active & (viol > 0)
        if not joins.any():
            break
        size = penalty.magnitude(grad)
        step = viol / np.maximum(np.diag(Q) + penalty.l2, 1e-300)
        x = np.where(joins, -grad / np.where(size > 0, size, 1.0) * step, x)
        active |= joins
    return best if best is not None and best[1] <= tol else None


def _newton_on_active(Q, r, penalty, x, active, tol, steps=30):
    """:func:`_group_polish`'s Newton steps on the set ``active``: (x, active) with
    the coordinates that crossed zero out of it, or (None, None) when a system has
    no finite solution."""
    grouped = penalty.groups >= 0
    for _ in range(steps):
        A = np.flatnonzero(active)
        if A.size == 0:
            break
        size = penalty.magnitude(x)
        unit = np.divide(x, size, out=np.zeros_like(x), where=size > 0)
        grad = Q @ x + r
        F = grad[A] + penalty.l1[A] * unit[A] + penalty.l2[A] * x[A]
        if float(np.max(np.abs(F))) <= 0.25 * tol:
            break
        J = Q[A][:, A]  # rows first: faster than np.ix_
        J.flat[::A.size + 1] += penalty.l2[A]
        in_group = grouped[A] & (size[A] > 0)
        if in_group.any():
            curvature = np.where(in_group, penalty.l1[A] / np.where(in_group, size[A], 1.0), 0.0)
            J.flat[::A.size + 1] += curvature
            # every active group's -a_G / ||x_G|| u_G u_G' at once (a loop over groups
            # took 38 ms per solve for 100 groups of 3, a multinomial path's models)
            at = np.flatnonzero(in_group)
            members, u = penalty.groups[A][at], unit[A][at]
            same = members[:, None] == members[None, :]
            J[np.ix_(at, at)] -= np.where(same, curvature[at][:, None] * np.outer(u, u), 0.0)
        _, d, info = dposv(J, -F)  # positive definite (Cholesky): half an LU's flops
        if info != 0:
            try:
                d = np.linalg.lstsq(J, -F, rcond=None)[0]
            except np.linalg.LinAlgError:
                return None, None
        new = x.copy()
        new[A] += d
        if not np.all(np.isfinite(new)):
            return None, None
        penalised = ~penalty.unpenalised
        crossed = penalised & active & ((penalty.magnitude(new) < 1e-12 * (1.0 + size))
                                        | (~grouped & (np.sign(new) != np.sign(x))))
        x = new
        if crossed.any():
            x[crossed] = 0.0
            active = active & ~crossed
    return x, active


def solve_qp(Q, r, penalty: ElasticNetPenalty, x0=None, tol=1e-12, max_iter=20000,
             polish_every=25, Qx0=None):
    """Minimise 1/2 x'Qx + r'x + P(x); stop when the KKT violation is <= ``tol``.
    ``Qx0``: ``Q @ x0``, if the caller has it."""
    k = r.shape[0]
    x = np.zeros(k) if x0 is None else np.array(x0, dtype=np.float64)
    x[penalty.fixed] = 0.0
    if k == 0:
        return QPResult(x, 0, 0.0, True)
    Qx = Qx0 if Qx0 is not None and np.array_equal(x, x0) else Q @ x
    grad = Qx + r
    polish = not penalty.grouped
    if polish:
        hint = np.where(penalty.violation(x, grad) > 0, -np.sign(grad), 0.0)
        polished = _polish(Q, r, penalty, x, tol, sign_hint=hint, Qx=Qx)
        if polished is not None:
            return QPResult(polished[0], 0, polished[1], True)
    else:
        if float(np.max(penalty.violation(x, grad), initial=0.0)) <= tol:
            return QPResult(x, 0, 0.0, False)
        polished = _group_polish(Q, r, penalty, x, tol)
        if polished is not None:
            return QPResult(polished[0], 0, polished[1], True)
    step = 1.0 / _lipschitz(Q, EXACT_LIPSCHITZ_MAX if polish else EXACT_LIPSCHITZ_MAX_GROUPED)
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
            polished = (_polish(Q, r, penalty, x, tol) if polish
                        else _group_polish(Q, r, penalty, x, tol))
            if polished is not None:
                return QPResult(polished[0], it, polished[1], True)
    return QPResult(x, max_iter, viol, False)
