"""Where should ``solver="auto"`` switch from the full Gram to working-set Newton?

For the squared loss, times ``gram`` (one pass of n p^2 / 2 flops, then the driver)
against ``newton`` (a few passes of n p plus Gram blocks of the working set) on
seeded tables of n rows and a range of p, at an alpha that selects about 10% of
the columns. Prints a table and writes JSON.

    python benchmarks/bench_auto.py [--rows N] [--features 100,250,...] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from elasticnet_dist import ElasticNet, alpha_max
from elasticnet_dist.datasets import make_wide_table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", default="100,250,500,1000,2000")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "bench_auto.json"))
    args = ap.parse_args(argv)
    rows = []
    print("%6s %8s %12s %12s %10s %10s" % ("p", "selected", "gram s", "newton s",
                                           "gram/newt", "newton passes"))
    for p in [int(v) for v in args.features.split(",")]:
        table = make_wide_table(args.rows, p, n_informative=max(5, p // 10), seed=1)
        X, y = table.X, table.y
        alpha = 0.05 * alpha_max(X, y, l1_ratio=0.5)
        times, fits = {}, {}
        for solver in ("gram", "newton"):
            t0 = time.perf_counter()
            fits[solver] = ElasticNet(alpha=alpha, l1_ratio=0.5, solver=solver).fit(X, y)
            times[solver] = time.perf_counter() - t0
        k = int(np.count_nonzero(fits["newton"].coef_))
        rows.append(dict(rows=args.rows, features=p, selected=k, gram_s=times["gram"],
                         newton_s=times["newton"], newton_passes=fits["newton"].n_passes_))
        print("%6d %8d %12.2f %12.2f %10.2f %10d" % (p, k, times["gram"], times["newton"],
                                                    times["gram"] / times["newton"],
                                                    fits["newton"].n_passes_), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=2)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
