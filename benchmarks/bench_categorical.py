"""Categorical columns as group-penalised one-hot blocks (issue 19, point 3).

A seeded table (default 100,000 rows, 100 numeric columns, 10 string columns of 4 to
50 levels: 242 one-hot features) whose label moves with 3 numeric columns and 2
categorical ones, fitted in memory on the local engine from an Arrow table (the
levels read, the blocks decoded one-hot: loading is included in every time):

- ``fit``: ``ElasticNet`` with the lasso's group form (l1_ratio 1, ``standardize=False``:
  ``alpha (sum_j |w_j| + sum_G sqrt(m_G) ||w_G||)``) at alpha_max / 20, squared loss.
  Peer in the same run where installed: skglm's ``GroupBCD`` with ``QuadraticGroup``
  and ``WeightedGroupL2`` (weights 1 for the numeric columns, ``sqrt(m)`` for a
  column of m levels), the same objective on the same one-hot matrix, its time
  (one-hot matrix given, numba compilation excluded by a first call) and the
  largest coefficient difference;
- ``search``: ``ElasticNetCV`` with 5 folds x l1_ratios (0.5, 0.9, 1) x 100 alphas,
  squared and logistic, against the same search on the same one-hot columns given
  as plain numeric columns (the elastic net without groups): what the groups cost.

Prints a table and writes JSON.

    python benchmarks/bench_categorical.py [--rows N] [--numeric P] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SEED = 0
LEVELS = (4, 8, 12, 16, 20, 24, 30, 36, 42, 50)
INFORMATIVE_NUMERIC, INFORMATIVE_CATEGORICAL = 3, 2


def make_table(n, p, loss):
    """(Arrow table with string columns, the one-hot matrix in the estimator's
    feature order, the group of each of its columns)."""
    import pyarrow as pa

    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((n, p))
    codes = [rng.integers(0, m, n) for m in LEVELS]
    eta = X[:, :INFORMATIVE_NUMERIC] @ np.array([1.0, -0.8, 0.6])
    for k in range(INFORMATIVE_CATEGORICAL):
        eta += rng.normal(0, 0.8, LEVELS[k])[codes[k]]
    if loss == "squared":
        y = eta + rng.standard_normal(n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    columns = {"x%03d" % j: X[:, j] for j in range(p)}
    onehot = [X]
    groups = [-1] * p
    for k, (m, code) in enumerate(zip(LEVELS, codes, strict=True)):
        names = np.array(["L%02d" % i for i in range(m)])  # sorted as the levels are
        columns["c%d" % k] = pa.array(names[code]).dictionary_encode()
        onehot.append(np.eye(m)[code])
        groups += [k] * m
    columns["y"] = y
    return pa.table(columns), np.hstack(onehot), np.array(groups)


def found(coef, groups, p):
    """(informative numeric selected, informative categorical selected, groups selected)."""
    numeric = int(np.count_nonzero(coef[:INFORMATIVE_NUMERIC]))
    chosen = {int(g) for g in np.unique(groups[coef != 0]) if g >= 0}
    return numeric, len(chosen & set(range(INFORMATIVE_CATEGORICAL))), \
        int(np.count_nonzero(coef[:p])) + len(chosen)


def run_fit(table, onehot, groups, p):
    from elasticnet_dist import ElasticNet
    from elasticnet_dist.solvers import compute_alpha_max
    from elasticnet_dist.sources import InMemorySource

    y = np.asarray(table.column("y"))
    alpha = compute_alpha_max(InMemorySource(onehot, y, groups=groups), l1_ratio=1.0,
                              standardize=False) / 20
    t0 = time.perf_counter()
    est = ElasticNet(alpha=alpha, l1_ratio=1.0, standardize=False, tol=1e-10).fit(
        table, label="y")
    ours = time.perf_counter() - t0
    out = {"case": "fit squared, group lasso, alpha_max/20", "ours_s": ours,
           "passes": est.n_passes_, "selected": found(est.coef_, groups, p)}
    try:
        from skglm import GeneralizedLinearEstimator
        from skglm.datafits import QuadraticGroup
        from skglm.penalties import WeightedGroupL2
        from skglm.solvers import GroupBCD
    except ImportError:
        out["peer"] = "skglm not installed (pip install skglm)"
        return out
    ids = np.where(groups >= 0, groups + p, np.arange(groups.size))  # singletons first
    order = np.argsort(ids, kind="stable")
    bounds = np.flatnonzero(np.diff(ids[order])) + 1
    grp_ptr = np.concatenate([[0], bounds, [order.size]]).astype(np.int32)
    sizes = np.diff(grp_ptr)
    weights = np.where(ids[order][grp_ptr[:-1]] >= p, np.sqrt(sizes), 1.0)

    def skglm_fit():
        model = GeneralizedLinearEstimator(
            QuadraticGroup(grp_ptr, order.astype(np.int32)),
            WeightedGroupL2(alpha, weights, grp_ptr, order.astype(np.int32)),
            GroupBCD(tol=1e-10, fit_intercept=True, max_iter=1000))
        return model.fit(onehot, y)

    small = slice(0, 2000)
    GeneralizedLinearEstimator(QuadraticGroup(grp_ptr, order.astype(np.int32)),
                               WeightedGroupL2(alpha, weights, grp_ptr, order.astype(np.int32)),
                               GroupBCD(tol=1e-4, fit_intercept=True)).fit(onehot[small],
                                                                          y[small])  # numba
    t0 = time.perf_counter()
    model = skglm_fit()
    peer = time.perf_counter() - t0
    out.update(peer="skglm GroupBCD", peer_s=peer, ratio=ours / peer,
               max_coef_diff=float(np.max(np.abs(model.coef_ - est.coef_))))
    return out


def run_search(table, onehot, groups, p, loss):
    import pyarrow as pa

    from elasticnet_dist import ElasticNetCV

    kw = dict(loss=loss, l1_ratio=[0.5, 0.9, 1.0], cv=5)
    t0 = time.perf_counter()
    est = ElasticNetCV(**kw).fit(table, label="y")
    grouped = time.perf_counter() - t0
    plain_table = pa.table({**{"f%04d" % j: onehot[:, j] for j in range(onehot.shape[1])},
                            "y": table.column("y")})
    t0 = time.perf_counter()
    plain = ElasticNetCV(**kw).fit(plain_table, label="y")
    ungrouped = time.perf_counter() - t0
    return {"case": "search %s, 5 folds x 3 l1_ratios x 100 alphas" % loss,
            "ours_s": grouped, "route": est.route_, "passes": est.n_passes_,
            "alpha": est.alpha_, "l1_ratio": est.l1_ratio_,
            "selected": found(est.coef_, groups, p),
            "ungrouped_s": ungrouped, "ungrouped_passes": plain.n_passes_,
            "ungrouped_selected_features": int(np.count_nonzero(plain.coef_)),
            "grouped_over_ungrouped": grouped / ungrouped}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--numeric", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "categorical.json"))
    args = parser.parse_args()
    results = []
    table, onehot, groups = make_table(args.rows, args.numeric, "squared")
    results.append(run_fit(table, onehot, groups, args.numeric))
    results.append(run_search(table, onehot, groups, args.numeric, "squared"))
    table, onehot, groups = make_table(args.rows, args.numeric, "logistic")
    results.append(run_search(table, onehot, groups, args.numeric, "logistic"))
    print("%d rows, %d numeric + %d categorical columns (%d levels); selected: (informative "
          "numeric of %d, informative categorical of %d, columns)"
          % (args.rows, args.numeric, len(LEVELS), sum(LEVELS), INFORMATIVE_NUMERIC,
             INFORMATIVE_CATEGORICAL))
    for r in results:
        extra = ("peer %s %.2f s, ours/peer %.2f, max |coef diff| %.1e"
                 % (r["peer"], r["peer_s"], r["ratio"], r["max_coef_diff"]) if "peer_s" in r
                 else r.get("peer", "ungrouped %.2f s (%d passes), grouped/ungrouped %.2f"
                            % (r["ungrouped_s"], r["ungrouped_passes"],
                               r["grouped_over_ungrouped"]) if "ungrouped_s" in r else ""))
        print("%-52s ours %7.2f s  passes %4s  selected %s  %s"
              % (r["case"], r["ours_s"], r.get("passes"), r["selected"], extra))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.node(), "cpus": os.cpu_count(), "rows": args.rows,
                   "numeric": args.numeric, "levels": list(LEVELS), "results": results}, f,
                  indent=2, default=float)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
