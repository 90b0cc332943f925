"""Core solver benchmark: elasticnet_dist (local engine) against its in-memory peers.

One seeded dense problem, n = 100,000 rows x p = 2,000 AR(1)-correlated
columns on scales 1e-3..1e3; alpha picked so that 100 to 300 features are
selected at l1_ratio = 0.5; every solution evaluated on our objective
(DESIGN.md section 1) against a high-precision solution. Peers solve on the
explicitly standardized matrix (its construction is not timed), which is the
same problem in other coordinates.

    python benchmarks/bench_core.py [--rows N] [--features P] [--out FILE] [--skip-saga]

Prints a table (wall time, data passes or epochs, relative suboptimality,
selected count, ratio to the fastest elasticnet_dist run) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from elasticnet_dist import ElasticNet, alpha_max
from elasticnet_dist.datasets import make_wide_table

TARGET = (100, 300)


def objective(X, y, b, w, alpha, l1_ratio, loss, sd):
    eta = X @ w + b
    if loss == "squared":
        L = 0.5 * np.mean((y - eta) ** 2)
    else:
        L = np.mean(np.logaddexp(0.0, eta) - y * eta)
    u = sd * w
    return L + alpha * (l1_ratio * np.abs(u).sum() + 0.5 * (1 - l1_ratio) * (u @ u))


# ---- one adapter per contender: returns (intercept, coef on the original scale, passes) ----
def ours(solver, tol):
    def run(d):
        est = ElasticNet(alpha=d["alpha"], l1_ratio=d["l1_ratio"], loss=d["loss"], tol=tol,
                         solver=solver, max_iter=5000).fit(d["X"], d["y"])
        return est.intercept_, est.coef_, est.n_passes_
    run.__name__ = "elasticnet_dist %s (tol %g)" % (solver, tol)
    return run


def standardized(d):
    """The explicitly standardized matrix the peers solve on (built once, not timed)."""
    if d.get("Z") is None:
        d["Z"] = (d["X"] - d["mean"]) / d["sd"]
    return d["Z"]


def _back(d, u, b):
    w = u / d["sd"]
    return b - d["mean"] @ w, w


def sklearn_cd(d):
    from sklearn.linear_model import ElasticNet as SkElasticNet
    est = SkElasticNet(alpha=d["alpha"], l1_ratio=d["l1_ratio"], tol=1e-7, max_iter=100000)
    est.fit(standardized(d), d["y"])
    b, w = _back(d, est.coef_, est.intercept_)
    return b, w, est.n_iter_
sklearn_cd.__name__ = "scikit-learn ElasticNet cd (tol 1e-7)"


def sklearn_saga(d):
    from sklearn.linear_model import LogisticRegression
    n = d["y"].size
    est = LogisticRegression(C=1.0 / (d["alpha"] * n), l1_ratio=d["l1_ratio"], solver="saga",
                             tol=1e-5, max_iter=10000)
    est.fit(standardized(d), d["y"])
    b, w = _back(d, est.coef_[0], est.intercept_[0])
    return b, w, int(est.n_iter_[0])
sklearn_saga.__name__ = "scikit-learn LogisticRegression saga (tol 1e-5)"


def _skglm_estimator(loss, alpha, l1_ratio):
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Logistic, Quadratic
    from skglm.penalties import L1_plus_L2
    from skglm.solvers import AndersonCD
    return GeneralizedLinearEstimator(
        datafit=Logistic() if loss == "logistic" else Quadratic(),
        penalty=L1_plus_L2(alpha, l1_ratio), solver=AndersonCD(tol=1e-6, fit_intercept=True))


def skglm_fit(d):
    logistic = d["loss"] == "logistic"
    est = _skglm_estimator(d["loss"], d["alpha"], d["l1_ratio"])
    est.fit(standardized(d), 2 * d["y"] - 1 if logistic else d["y"])
    b, w = _back(d, np.ravel(est.coef_), float(np.ravel(est.intercept_)[0]))
    return b, w, -1  # skglm does not report epochs
skglm_fit.__name__ = "skglm AndersonCD (tol 1e-6)"


def warm_up_skglm():
    """Compile skglm's numba kernels outside the timed region."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 5)), rng.standard_normal(50)
    for loss in ("squared", "logistic"):
        _skglm_estimator(loss, 0.1, 0.5).fit(X, np.sign(y) if loss == "logistic" else y)


def choose_alpha(X, y, loss, l1_ratio):
    """Bisect alpha (log scale, coarse tolerance) until 100-300 features are selected."""
    hi = alpha_max(X, y, l1_ratio=l1_ratio, loss=loss)
    lo = hi * 1e-3
    for _ in range(25):
        mid = np.sqrt(lo * hi)
        k = np.count_nonzero(ElasticNet(alpha=mid, l1_ratio=l1_ratio, loss=loss, tol=1e-4)
                             .fit(X, y).coef_)
        if TARGET[0] <= k <= TARGET[1]:
            return mid, k
        lo, hi = (mid, hi) if k > TARGET[1] else (lo, mid)
    raise RuntimeError("no alpha selects %d-%d features" % TARGET)


def run_problem(loss, args, contenders):
    t0 = time.perf_counter()
    table = make_wide_table(args.rows, args.features, n_informative=args.informative, loss=loss,
                            correlation=0.5, seed=args.seed)
    X, y = table.X, table.y
    gen = time.perf_counter() - t0
    alpha, k = choose_alpha(X, y, loss, args.l1_ratio)
    print("%s: generated in %.1f s, alpha=%.4g selects %d features" % (loss, gen, alpha, k),
          flush=True)
    mean, sd = X.mean(0), X.std(0)
    hp = ElasticNet(alpha=alpha, l1_ratio=args.l1_ratio, loss=loss, tol=1e-13,
                    max_iter=5000).fit(X, y)
    f_star = objective(X, y, hp.intercept_, hp.coef_, alpha, args.l1_ratio, loss, sd)
    d = dict(X=X, y=y, Z=None, alpha=alpha, l1_ratio=args.l1_ratio, loss=loss, mean=mean, sd=sd)
    rows = []
    for fit in contenders:
        if fit.__name__.startswith(("scikit", "skglm")):
            standardized(d)  # outside the timed region
        try:
            t1 = time.perf_counter()
            b, w, passes = fit(d)
            wall = time.perf_counter() - t1
        except ImportError as exc:
            print("skipping %s: %s" % (fit.__name__, exc), file=sys.stderr)
            continue
        f = objective(X, y, b, w, alpha, args.l1_ratio, loss, sd)
        print("  %-9s %-48s %8.2f s  rel subopt %.1e" % (loss, fit.__name__, wall,
                                                        (f - f_star) / abs(f_star)), flush=True)
        rows.append(dict(loss=loss, contender=fit.__name__, wall_s=wall, passes=int(passes),
                         rel_subopt=(f - f_star) / abs(f_star),
                         selected=int(np.count_nonzero(w))))
    return dict(loss=loss, alpha=alpha, l1_ratio=args.l1_ratio, selected_hp=int(
        np.count_nonzero(hp.coef_)), f_star=f_star, generate_s=gen, rows=rows)


def print_table(results):
    print("\n%-9s %-48s %9s %8s %11s %8s %9s" % ("loss", "contender", "wall s", "passes",
                                                 "rel subopt", "selected", "vs ours"))
    for res in results:
        best = min(r["wall_s"] for r in res["rows"] if r["contender"].startswith("elasticnet"))
        for r in res["rows"]:
            print("%-9s %-48s %9.2f %8d %11.1e %8d %8.1fx" % (
                r["loss"], r["contender"], r["wall_s"], r["passes"], max(r["rel_subopt"], 0.0),
                r["selected"], r["wall_s"] / best))
        print("%-9s alpha=%.4g l1_ratio=%g, %d features selected at high precision"
              % (res["loss"], res["alpha"], res["l1_ratio"], res["selected_hp"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--informative", type=int, default=150)
    ap.add_argument("--l1-ratio", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-saga", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "bench_core.json"))
    args = ap.parse_args(argv)
    try:
        warm_up_skglm()
    except ImportError:
        pass
    squared = [ours("newton", 1e-7), ours("gram", 1e-7), ours("fista", 1e-7), sklearn_cd,
               skglm_fit]
    logistic = [ours("newton", 1e-7), ours("fista", 1e-7), skglm_fit]
    if not args.skip_saga:
        logistic.append(sklearn_saga)
    results = [run_problem("squared", args, squared), run_problem("logistic", args, logistic)]
    print_table(results)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    from threadpoolctl import threadpool_info
    meta = dict(rows=args.rows, features=args.features, seed=args.seed, python=sys.version,
                machine=platform.machine(), cpus=os.cpu_count(), blas=threadpool_info())
    with open(args.out, "w") as fh:
        json.dump(dict(meta=meta, results=results), fh, indent=2, default=float)
    print("\nwrote %s" % args.out)


if __name__ == "__main__":
    main()
