"""A daily table of 16 files gains a 17th (issue 20, point 1): the rerun from the
statistics store, and the logistic search warm-started from yesterday's choice,
each against a cold run on the same 17 files.

The table: 106,250 x 2,000 (squared loss, the one-pass route) in 17 files of
6,250 rows, the first 16 (100,000 rows) the "yesterday" table. On one engine
(default Dask, an embedded LocalCluster started once, so that neither side pays
its start), ``ElasticNetCV`` with 5 folds x 3 l1_ratios x 100 alphas, rule 1se:

1. cold: the 17 files, no store;
2. prime: the 16 files with an empty store (a cold run that also writes it);
3. rerun: the 17th file added, the same store: 16 pieces from it, 1 decoded;
4. rerun + warm: the same (from a copy of the store as the prime left it), and
   the search warm-started from the prime's choice (``warm_start_from``): the
   daily configuration, ``--stats-store`` with ``--warm-start``.

Reported: wall time of each, rerun / cold (target below 0.25), the phases of
each (load, statistics pass, paths), the store's size, whether the rerun's
model and CV curves equal the cold run's bit for bit, and whether the warm
rerun chose the cold run's penalty.

Then the logistic loss (the pass route, which the store does not serve) on the
first ``--logistic-features`` columns, 5 folds x 3 l1_ratios x 50 alphas, 1se:
yesterday's search on the 16 files, today's whole search on the 17 (cold), and
today's search warm-started from yesterday's penalty and coefficients
(``warm_start_from``): wall time and data passes of each, and whether they chose
the same penalty. A small fit first warms the cluster's workers up, so that no
measured run pays their imports. Prints a table and writes JSON.

    python benchmarks/bench_incremental.py [--rows-per-file N] [--features P]
        [--files F] [--logistic-features P] [--engine dask|local|spark] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_engines import timed  # noqa: E402

from elasticnet_dist import ElasticNetCV  # noqa: E402
from elasticnet_dist.datasets import make_wide_table, write_parquet  # noqa: E402
from elasticnet_dist.engines import make_engine  # noqa: E402
from elasticnet_dist.stats_store import StatsStore  # noqa: E402

#: What every search shares; early_stop as the daily stage runs (its default, 10)
SEARCH = dict(l1_ratio=[0.5, 0.9, 1.0], cv=5, selection="1se", early_stop=10)


def make_files(rows_per_file, features, files, root):
    """``files`` Parquet files of one table (cached on disk by its shape): the label
    ``y`` (squared loss) and ``yb`` (0/1, the same columns' logistic model)."""
    path = os.path.join(root, "grow-%d-%d-%d-v2" % (rows_per_file, features, files))
    if not os.path.exists(os.path.join(path, "_done")):
        shutil.rmtree(path, ignore_errors=True)
        rows = rows_per_file * files
        table = make_wide_table(rows, features, n_informative=150, seed=0)
        labels = make_wide_table(rows, features, n_informative=150, seed=0, loss="logistic")
        write_parquet(table, path, n_files=files, extra_columns={"yb": labels.y})
        open(os.path.join(path, "_done"), "w").close()
    return path, sorted(f for f in os.listdir(path) if f.endswith(".parquet"))


def fit(engine, search, table, store, warm=None):
    est = ElasticNetCV(**search, alphas=100, engine=engine, stats_store=store,
                       warm_start_from=warm)
    _, seconds = timed(est.fit, table, label="y", exclude=["yb"])
    return est, seconds


def fit_logistic(engine, search, table, features, warm=None):
    est = ElasticNetCV(**search, alphas=50, loss="logistic", engine=engine,
                       warm_start_from=warm)
    _, seconds = timed(est.fit, table, label="yb", features=features)
    print("  %-9s %7.1f s  %4d passes  alpha %.6g  l1_ratio %g  %d selected"
          % ("warm" if warm else "cold", seconds, est.n_passes_, est.alpha_, est.l1_ratio_,
             np.count_nonzero(est.coef_)), flush=True)
    return est, seconds


def manifest_of(est):
    """What a warm start reads of a manifest, from a fitted search (as the stage writes
    it: the chosen penalty, the best score's, the coefficients)."""
    bl, ba = est.selection_["best"]
    alphas = np.atleast_2d(est.alphas_)
    return {"target": {"loss": est.loss}, "intercept": est.intercept_,
            "penalty": {"alpha": est.alpha_, "l1_ratio": est.l1_ratio_},
            "selection": {"scores": {"best": {"alpha": float(alphas[bl, ba]),
                                              "l1_ratio": float(np.atleast_1d(est.l1_ratio)[bl])}}},
            "selected": [{"name": name, "coefficient": float(c)}
                         for name, c in zip(est.feature_names_in_, est.coef_, strict=True)
                         if c != 0]}


def warm_up(engine, work):
    table = make_wide_table(2000, 20, n_informative=3, seed=1)
    path = write_parquet(table, os.path.join(work, "warm-up"), n_files=2)
    ElasticNetCV(cv=3, alphas=5, engine=engine).fit(path, label="y")


def describe(name, est, seconds, store=None):
    t = est.timings_
    row = {"run": name, "seconds": seconds, "load_s": t.get("load", float("nan")),
           "statistics_s": t.get("statistics", float("nan")),
           "paths_s": t.get("paths", float("nan")), "passes": int(est.n_passes_),
           "route": est.route_, "selected": int(np.count_nonzero(est.coef_)),
           "alpha": est.alpha_, "l1_ratio": est.l1_ratio_}
    if store is not None:
        row.update(est.fit_report_["source"]["stats_store"])
        row["store_bytes"] = StatsStore(store).size()
    print("  %-6s %7.1f s  load %5.1f  statistics %5.1f  paths %5.1f  %d selected%s"
          % (name, seconds, row["load_s"], row["statistics_s"], row["paths_s"],
             row["selected"], "  (store: %d pieces from it, %d read, %.2f GB)"
             % (row["pieces_from_store"], row["pieces_decoded"], row["store_bytes"] / 1e9)
             if store else ""), flush=True)
    return row


def same_bits(a, b):
    curves = all(np.array_equal(v, b.cv_results_[k], equal_nan=True)
                 for k, v in a.cv_results_.items()
                 if isinstance(v, np.ndarray) and v.dtype.kind == "f")
    return bool(curves and np.array_equal(a.coef_, b.coef_) and a.intercept_ == b.intercept_
                and a.alpha_ == b.alpha_)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows-per-file", type=int, default=6_250)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--files", type=int, default=17, help="the last one is the new file")
    ap.add_argument("--logistic-features", type=int, default=200, help="0 to skip")
    ap.add_argument("--engine", default="dask", choices=["dask", "local", "spark"])
    ap.add_argument("--early-stop", type=int, default=SEARCH["early_stop"],
                    help="search.early_stop of every search (0: the whole grid)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_incremental.json"))
    args = ap.parse_args(argv)
    search = dict(SEARCH, early_stop=args.early_stop or None)
    source, names = make_files(args.rows_per_file, args.features, args.files,
                               os.path.join(HERE, "data"))
    work = tempfile.mkdtemp(prefix="bench-incremental-")
    table, store = os.path.join(work, "table"), os.path.join(work, "store")
    os.makedirs(table)
    for name in names[:-1]:
        os.symlink(os.path.join(source, name), os.path.join(table, name))
    engine = make_engine(args.engine)
    rows, logistic = [], []
    try:
        warm_up(engine, work)
        est, s = fit(engine, search, source, None)
        rows.append(describe("cold", est, s))
        cold = est
        est, s = fit(engine, search, table, store)
        rows.append(describe("prime", est, s, store))
        prime = manifest_of(est)
        shutil.copytree(store, store + "-copy")
        os.sync()  # the store's 2.7 GB on disk before a rerun reads them, as a day later
        os.symlink(os.path.join(source, names[-1]), os.path.join(table, names[-1]))
        est, s = fit(engine, search, table, store)
        rows.append(describe("rerun", est, s, store))
        identical = same_bits(est, cold)
        os.sync()
        est, s = fit(engine, search, table, store + "-copy", prime)
        rows.append(describe("+warm", est, s, store + "-copy"))
        warm_same = est.alpha_ == cold.alpha_ and est.l1_ratio_ == cold.l1_ratio_
        rows[-1].update(warm_start=est.warm_start_info_, same_penalty=warm_same,
                        max_coef_difference=float(np.max(np.abs(est.coef_ - cold.coef_))))
        if args.logistic_features:
            features = ["f%04d" % j for j in range(args.logistic_features)]
            print("logistic, %d columns (yesterday on %d files, then today's cold and warm "
                  "searches on %d):" % (len(features), len(names) - 1, len(names)))
            os.remove(os.path.join(table, names[-1]))
            yesterday, _ = fit_logistic(engine, search, table, features)
            os.symlink(os.path.join(source, names[-1]), os.path.join(table, names[-1]))
            for warm in (None, manifest_of(yesterday)):
                est, s = fit_logistic(engine, search, table, features, warm)
                logistic.append({"run": "warm" if warm else "cold", "seconds": s,
                                 "passes": int(est.n_passes_), "alpha": est.alpha_,
                                 "l1_ratio": est.l1_ratio_,
                                 "selected": int(np.count_nonzero(est.coef_)),
                                 "coef": est.coef_,
                                 "warm_start": getattr(est, "warm_start_info_", None)})
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)
    ratio = rows[2]["seconds"] / rows[0]["seconds"]
    print("\n%d x %d in %d files (+1) on %s: rerun %.1f s / cold %.1f s = %.3f (target < 0.25); "
          "prime / cold on 16 files %.2f; bit-identical to the cold run: %s; rerun with the "
          "warm start %.1f s = %.3f of cold, the same penalty: %s (coefficients within %.2g)"
          % (args.rows_per_file * (args.files - 1), args.features, args.files - 1,
             args.engine, rows[2]["seconds"], rows[0]["seconds"], ratio,
             rows[1]["seconds"] / rows[0]["seconds"], identical, rows[3]["seconds"],
             rows[3]["seconds"] / rows[0]["seconds"], warm_same,
             rows[3]["max_coef_difference"]))
    summary = {}
    if logistic:
        cold_l, warm_l = logistic
        gap = float(np.max(np.abs(cold_l.pop("coef") - warm_l.pop("coef"))))
        summary = {"seconds_ratio": warm_l["seconds"] / cold_l["seconds"],
                   "passes_ratio": warm_l["passes"] / cold_l["passes"],
                   "same_penalty": cold_l["alpha"] == warm_l["alpha"]
                   and cold_l["l1_ratio"] == warm_l["l1_ratio"], "max_coef_difference": gap}
        print("logistic warm start: %.1f s / %.1f s = %.3f, %d / %d passes = %.3f; the same "
              "penalty: %s; coefficients within %.2g"
              % (warm_l["seconds"], cold_l["seconds"], summary["seconds_ratio"],
                 warm_l["passes"], cold_l["passes"], summary["passes_ratio"],
                 summary["same_penalty"], gap))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                   "rows_per_file": args.rows_per_file, "features": args.features,
                   "files": args.files, "engine": args.engine,
                   "early_stop": search["early_stop"], "runs": rows,
                   "rerun_over_cold": ratio, "bit_identical": identical,
                   "warm_rerun_over_cold": rows[3]["seconds"] / rows[0]["seconds"],
                   "logistic": logistic, "logistic_summary": summary}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
