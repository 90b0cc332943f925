"""Stability selection's cost (issue 20): the cross-validated search alone against the
same search followed by ``stability=N`` complementary half-samples at the chosen
penalty, on the engines benchmark's table (default 100,000 x 2,000 in 16 files).

- squared loss, every column, the one-pass route: the stability phase reads the
  table again with ``G`` row groups, makes one pass of every group's Gram matrix
  and solves the N half-sample paths on the driver;
- logistic loss on the first ``--logistic-features`` columns, the pass route: the
  N half-sample paths share every pass, each point's sums over its own rows.

Both on Dask (an embedded LocalCluster on this machine's cores), 5 folds x 3
l1_ratios x 100 alphas (the logistic search: 50), rule 1se. Reported: wall time of
each, the ratio, the data passes of the stability phase, and how many of the
selected features reach a frequency of 0.6 and 0.9. Prints a table and writes JSON.

    python benchmarks/bench_stability.py [--rows N] [--features P] [--files F]
        [--stability N] [--groups G] [--logistic-features P] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_engines import make_table, table_arguments, timed  # noqa: E402

from elasticnet_dist import ElasticNetCV  # noqa: E402
from elasticnet_dist.engines import make_engine  # noqa: E402

L1_RATIOS = [0.5, 0.9, 1.0]


def run(engine, path, label, features, loss, n_alphas, stability, groups):
    est = ElasticNetCV(l1_ratio=L1_RATIOS, cv=5, alphas=n_alphas, loss=loss, selection="1se",
                       stability=stability, stability_groups=groups, engine=engine)
    _, seconds = timed(est.fit, path, label=label, features=features)
    row = {"loss": loss, "features": len(features), "stability": stability,
           "seconds": seconds, "search_passes": int(est.n_passes_), "route": est.route_,
           "selected": int(np.count_nonzero(est.coef_)), "alpha": est.alpha_,
           "l1_ratio": est.l1_ratio_}
    if stability:
        info = est.stability_info_
        freq = est.stability_[est.coef_ != 0]
        row.update(stability_seconds=info["seconds"], stability_passes=info["data_passes"],
                   stability_route=info["route"], converged=info["converged"],
                   stable_06=int(np.sum(freq >= 0.6)), stable_09=int(np.sum(freq >= 0.9)))
    print("  %-8s p=%-5d stability=%-3d %7.1f s  (%s route, %d passes%s)"
          % (loss, len(features), stability, seconds, row["route"], row["search_passes"],
             "; stability %.1f s, %d passes, %d/%d selected at >= 0.9"
             % (row["stability_seconds"], row["stability_passes"], row["stable_09"],
                row["selected"]) if stability else ""), flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    table_arguments(ap)
    ap.add_argument("--stability", type=int, default=50)
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--logistic-features", type=int, default=200, help="0 to skip")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_stability.json"))
    args = ap.parse_args(argv)
    root = os.path.join(HERE, "data")
    path, _, _, names = make_table(args.rows, args.features, args.files, args.seed, root)
    cases = [("squared", "y", list(names), 100)]
    if args.logistic_features:
        cases.append(("logistic", "yb", list(names[:args.logistic_features]), 50))
    engine = make_engine("dask")
    rows = []
    try:
        for loss, label, features, n_alphas in cases:
            for stability in (0, args.stability):
                rows.append(run(engine, path, label, features, loss, n_alphas, stability,
                                args.groups))
    finally:
        engine.close()
    print("\n%-9s %6s %9s %11s %7s %9s %9s" % ("loss", "p", "plain s", "stability s",
                                                 "ratio", "passes+", "stable .9"))
    summary = []
    for plain, stable in zip(rows[0::2], rows[1::2], strict=True):
        ratio = stable["seconds"] / plain["seconds"]
        summary.append({"loss": plain["loss"], "features": plain["features"],
                        "plain_s": plain["seconds"], "stability_s": stable["seconds"],
                        "ratio": ratio, "extra_passes": stable["stability_passes"]})
        print("%-9s %6d %9.1f %11.1f %7.2f %9d %5d/%d" % (
            plain["loss"], plain["features"], plain["seconds"], stable["seconds"], ratio,
            stable["stability_passes"], stable["stable_09"], stable["selected"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                   "rows": args.rows, "columns": args.features, "files": args.files,
                   "stability": args.stability, "groups": args.groups, "runs": rows,
                   "summary": summary}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
