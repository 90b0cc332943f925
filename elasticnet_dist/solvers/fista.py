"""Accelerated proximal gradient (FISTA) with backtracking and adaptive restart.

Beck & Teboulle (2009) with the restarts of O'Donoghue & Candes (2015). One
iteration is one pass that evaluates the loss and gradient at two points at
once, the new iterate ``x_k`` and the extrapolated point ``y_k``: a pass is
bound by reading the rows, so the second matrix-vector product is nearly free.
``x_k``'s values give the duality gap and the sufficient-decrease test of the
step that produced it (if it fails, the Lipschitz estimate doubles and the
step is redone, at the cost of a pass); ``y_k``'s gradient gives the next step

    x_{k+1} = prox_{P / L}(y_k - grad L(y_k) / L).

For the squared loss the intercept is exact at every step (the columns are
centred), for the logistic loss it takes gradient steps with the rest.
This solver needs no Hessian, so it is the fallback for any number of columns.
"""
from __future__ import annotations

import numpy as np

from .base import SolverResult, initial_point
from .options import DEFAULT_OPTIONS

#: Relative slack of the sufficient-decrease test: loss sums over many rows carry
#: rounding errors far above machine epsilon, and without slack a converged run
#: would read rounding as a failed test and inflate the Lipschitz estimate.
ROUNDING_SLACK = 1e-12


def solve_fista(problem, source, u0=None, b0=None, options=DEFAULT_OPTIONS, verbose=False):
    """Minimise the elastic-net objective by FISTA; one data pass per iteration (at
    most ``options.max_iter``)."""
    pen = problem.penalty
    free_b = problem.fit_intercept and not problem.loss.quadratic
    tol_abs = problem.gap_tolerance(options.tol)
    max_iter = options.max_iter
    passes0 = source.n_passes
    lip = problem.default_curvature  # a lower bound of lambda_max; doubled as needed

    x_u, x_b = initial_point(problem, u0, b0)
    ev_x = problem.evaluate(source.run_pass(problem.request([(x_u, x_b)])))[0]
    y_u, y_b, ev_y = x_u, x_b, ev_x
    t = 1.0
    history = []
    converged, gap, it = False, np.inf, 1
    F_x = problem.objective(ev_x.loss, x_u)
    while True:
        gap = problem.duality_gap(x_u, ev_x.grad, ev_x.loss, ev_x.grad_b,
                                  dual_curvature=ev_x.dual_curvature)
        history.append({"iter": it, "objective": F_x, "gap": gap, "lipschitz": lip})
        if verbose:
            print("fista it=%d F=%.12g gap=%.3e L=%.3g" % (it, F_x, gap, lip))
        if gap <= tol_abs:
            converged = True
            break
        if it >= max_iter:
            break
        while True:  # backtracking on the Lipschitz estimate
            n_u = pen.prox(y_u - ev_y.grad / lip, 1.0 / lip)
            n_b = y_b - ev_y.grad_b / lip if free_b else y_b
            step_u, step_b = n_u - y_u, n_b - y_b
            restart = float((y_u - n_u) @ (n_u - x_u) + (y_b - n_b) * (n_b - x_b)) > 0
            if restart:
                t_new, z_u, z_b = 1.0, n_u, n_b
            else:
                t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_new
                z_u, z_b = n_u + beta * (n_u - x_u), n_b + beta * (n_b - x_b)
            points = [(n_u, n_b)] if restart else [(n_u, n_b), (z_u, z_b)]
            evs = problem.evaluate(source.run_pass(problem.request(points)))
            it += 1
            ev_n = evs[0]
            upper = (ev_y.loss + float(ev_y.grad @ step_u) + ev_y.grad_b * step_b
                     + 0.5 * lip * float(step_u @ step_u + step_b * step_b))
            if ev_n.loss <= upper + ROUNDING_SLACK * abs(upper) or it >= max_iter:
                break
            lip *= 2.0
        F_n = problem.objective(ev_n.loss, n_u)
        if F_n > F_x and not restart:  # function restart: drop the momentum
            t_new, z_u, z_b, evs = 1.0, n_u, n_b, [ev_n]
        x_u, x_b, ev_x, F_x = n_u, n_b, ev_n, F_n
        y_u, y_b, ev_y = z_u, z_b, evs[-1]
        t = t_new
    return SolverResult(u=x_u, intercept=x_b, objective=F_x, gap=gap, tol_abs=tol_abs,
                        converged=converged, n_iter=it,
                        n_passes=source.n_passes - passes0, history=history)
