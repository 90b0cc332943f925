"""The ``elasticnet-dist`` command.

argparse (standard library) keeps the command free of extra dependencies in
scheduler images. Commands so far:

- ``elasticnet-dist demo``: generate a seeded wide table, write it as
  partitioned Parquet, fit an elastic net on it with the embedded default
  engine (a local Dask cluster), print what was selected and what it cost;
- ``elasticnet-dist --version``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

EXAMPLES = """examples:
  elasticnet-dist demo
  elasticnet-dist demo --rows 20000 --features 2000 --loss logistic
  elasticnet-dist demo --engine spark --cluster local[2]
  elasticnet-dist demo --engine dask --cluster tcp://127.0.0.1:8786
"""


def _demo(args):
    import tempfile

    from . import ElasticNet, alpha_max
    from .datasets import make_wide_table, write_parquet

    table = make_wide_table(args.rows, args.features, args.informative, loss=args.loss,
                            seed=args.seed)
    workdir = args.workdir or tempfile.mkdtemp(prefix="elasticnet_dist-demo-")
    path = write_parquet(table, os.path.join(workdir, "sample-table"), n_files=args.files)
    amax = alpha_max(table.X, table.y, l1_ratio=args.l1_ratio, loss=args.loss)
    alpha = args.alpha if args.alpha is not None else args.alpha_fraction * amax
    print("table: %s, %d rows x %d columns in %d Parquet files (seed %d), %d informative, "
          "loss=%s" % (path, args.rows, args.features, args.files, args.seed, args.informative,
                       args.loss))
    print("penalty: alpha=%.6g (alpha_max=%.6g), l1_ratio=%g" % (alpha, amax, args.l1_ratio))
    t0 = time.perf_counter()
    est = ElasticNet(alpha=alpha, l1_ratio=args.l1_ratio, loss=args.loss, engine=args.engine,
                     cluster=args.cluster).fit(path, label="y")
    wall = time.perf_counter() - t0
    rep = est.fit_report_
    print("engine: %s, %d workers (started in %.2f s), %d partitions, %d rows, %.1f MB cached"
          % (rep["engine"], rep["workers"], rep["engine_start_s"], rep["partitions"],
             rep["rows"], rep["bytes_cached"] / 1e6))
    print("fit: solver=%s, data passes: %d, iterations: %d, duality gap %.2e (tolerance %.2e), "
          "%.2f s (%s)" % (est.solver_, est.n_passes_, est.n_iter_, est.dual_gap_, est.tol_, wall,
                           ", ".join("%s %.2f s" % kv for kv in est.timings_.items())))
    selected = np.flatnonzero(est.coef_)
    truth = set(np.flatnonzero(table.coef).tolist())
    hits = len(truth.intersection(selected.tolist()))
    print("selected %d of %d features; %d of the %d informative ones"
          % (selected.size, args.features, hits, len(truth)))
    order = selected[np.argsort(-np.abs(est.coef_standardized_[selected]), kind="stable")]
    for j in order[:10]:
        print("  %s  standardized coefficient %+.4f" % (table.names[j], est.coef_standardized_[j]))
    return 0


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="elasticnet-dist", description="Elastic-net feature selection for wide tables.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="elasticnet-dist " + __version__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="fit a seeded sample table and print the selection",
                          epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--rows", type=int, default=5000)
    demo.add_argument("--features", type=int, default=1000)
    demo.add_argument("--informative", type=int, default=25)
    demo.add_argument("--loss", choices=("squared", "logistic"), default="squared")
    demo.add_argument("--l1-ratio", type=float, default=0.5)
    demo.add_argument("--alpha", type=float, default=None,
                      help="penalty constant (default: --alpha-fraction x alpha_max)")
    demo.add_argument("--alpha-fraction", type=float, default=0.1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--files", type=int, default=8, help="Parquet files of the sample table")
    demo.add_argument("--engine", choices=("dask", "spark", "local"), default="dask",
                      help="where the passes run (default: an embedded local Dask cluster)")
    demo.add_argument("--cluster", default=None,
                      help="Dask scheduler address or Spark master URL (default: embedded)")
    demo.add_argument("--workdir", default=None,
                      help="where the sample table is written (default: a temporary directory)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into a reader that stopped early (e.g. head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
