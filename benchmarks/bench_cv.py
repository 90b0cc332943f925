"""Cross-validation benchmark: the whole (l1_ratio x alpha) grid in a handful of passes.

On the engines benchmark's table (n x p, ``--files`` Parquet files; labels
``y`` and ``yb``) with a fold column added that equals our folds of position
(``fold``; so every contender sees the same folds):

- the single-pass bound: one plain read of the table into NumPy plus its Gram
  matrix ``X'X`` (DESIGN.md's "one pass" of the squared loss);
- ours, squared loss, ``ElasticNetCV`` with 5 folds x 3 l1_ratios x 100 alphas,
  on Dask (embedded LocalCluster) and on Spark (``local[2]``), load + search;
- the route boundary: both routes (one pass with every fold's Gram matrix, or
  one pass per path step, what a table too wide for p x p matrices gets) on
  the first ``--route-features`` columns;
- ours, logistic loss, 5 folds x 50 alphas on Dask, on the first
  ``--logistic-features`` columns (the pass-per-step route; each pass computes
  a Hessian block of every fold's working set, ``n |H|^2`` flops, which is
  what makes dense ends of logistic paths slow on 2 cores): data passes in all;
- Spark ML ``CrossValidator`` over ``LinearRegression`` (default solver, the
  OWLQN path for an elastic net) with ``foldCol="fold"`` and our grid points
  mapped exactly (:func:`elasticnet_dist.penalty.native_to_peer`, sample
  standard deviations), on the same session. The full grid would take hours,
  so ``--spark-points`` grid points are timed and the time extrapolated to all.

The bound is measured again after each of ``--repeats`` runs of ours on Dask,
so every run is compared with the mean of the bounds measured just before and
just after it; the ratio reported is the median over the runs (this machine is
shared: the same bound moved by 30-80% within an hour).

Prints a table, the issue's targets, and writes JSON.

    python benchmarks/bench_cv.py [--rows N] [--features P] [--files F]
        [--spark-points K] [--route-features P] [--logistic-features P]
        [--skip-spark] [--repeats R] [--out FILE]

(0 for ``--spark-points``, ``--route-features`` or ``--logistic-features``
skips that part.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from bench_engines import (  # noqa: E402
    load_assembled, make_table, numpy_baselines, spark_session_for_bench, table_arguments, timed)

from elasticnet_dist import ElasticNetCV  # noqa: E402
from elasticnet_dist.engines import make_engine  # noqa: E402
from elasticnet_dist.folds import position_folds  # noqa: E402
from elasticnet_dist.penalty import native_to_peer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDS = 5
L1_RATIOS = [0.2, 0.5, 0.9]
N_ALPHAS = 100
LOGISTIC_ALPHAS = 50


def with_fold_column(path):
    """A copy of the table with ``fold`` = our fold of position of every row."""
    out = path + "-folds"
    if os.path.exists(os.path.join(out, "_done")):
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name in sorted(f for f in os.listdir(path) if f.endswith(".parquet")):
        table = pq.read_table(os.path.join(path, name))
        folds = position_folds(name, 0, table.num_rows, FOLDS)
        pq.write_table(table.append_column("fold", pa.array(folds)), os.path.join(out, name))
    open(os.path.join(out, "_done"), "w").close()
    return out


def first_columns(p):
    """Glob patterns for the columns f0000 .. f{p-1} (p a multiple of 100)."""
    return ["f%02d*" % i for i in range(p // 100)]


def run_ours(engine, path, loss, features=("f[0-9]*",), **kw):
    est = ElasticNetCV(cv=FOLDS, loss=loss, engine=engine, **kw)
    _, t = timed(est.fit, path, label="y" if loss == "squared" else "yb",
                 features=list(features))
    rep = est.fit_report_
    row = dict(engine=engine.name, loss=loss, route=est.route_, passes=est.n_passes_,
               features=len(est.feature_names_in_),
               load_s=rep["timings"]["load"], statistics_s=rep["timings"]["statistics"],
               paths_s=rep["timings"]["paths"], total_s=t,
               grid="%d folds x %d l1_ratios x %d alphas" % (
                   FOLDS, np.size(kw.get("l1_ratio", 0.5)), kw.get("n_alphas", 100)),
               alpha=est.alpha_, l1_ratio=est.l1_ratio_,
               selected=int(np.count_nonzero(est.coef_)))
    print("  %(engine)s %(loss)s %(route)s p=%(features)d: %(passes)d passes, %(total_s).2f s"
          % row, flush=True)
    return est, row


def median_ratio(repeats):
    return float(np.median([r["ratio"] for r in repeats]))


def run_crossvalidator(spark, path, names, est, sd_y, n, points):
    """Spark ML's CrossValidator on ``points`` of our grid; seconds per grid point."""
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.regression import LinearRegression
    from pyspark.ml.tuning import CrossValidator

    df, t_load = timed(load_assembled, spark, path, names, ["y", "fold"])
    lr = LinearRegression(featuresCol="features", labelCol="y", standardization=True,
                          maxIter=100, tol=1e-6)
    li = L1_RATIOS.index(est.l1_ratio_)
    ai = int(np.flatnonzero(est.alphas_[li] == est.alpha_)[0])
    picks = sorted({ai, max(0, ai - 10), min(N_ALPHAS - 1, ai + 10)})[:points]
    c = np.sqrt(n / (n - 1.0))  # MLlib's iterative solvers standardize with sample sd
    maps, ours_mse = [], []
    for a in picks:
        lam, enp = native_to_peer(est.alphas_[li, a], est.l1_ratio_, loss="squared",
                                  sd_y=sd_y, variance_correction=c)
        maps.append({lr.regParam: float(lam), lr.elasticNetParam: float(enp)})
        ours_mse.append(float(est.cv_results_["mean_mse"][li, a]))
    cv = CrossValidator(estimator=lr, estimatorParamMaps=maps, foldCol="fold", numFolds=FOLDS,
                        evaluator=RegressionEvaluator(labelCol="y", metricName="mse"))
    model, t_fit = timed(cv.fit, df)
    df.unpersist()
    spark_mse = [float(m) for m in model.avgMetrics]
    return dict(load_s=t_load, fit_s=t_fit, points=len(picks),
                per_point_s=t_fit / len(picks), mse_spark=spark_mse, mse_ours=ours_mse,
                max_rel_mse_diff=float(np.max(np.abs(np.subtract(spark_mse, ours_mse))
                                              / np.abs(ours_mse))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    table_arguments(ap)
    ap.add_argument("--spark-points", type=int, default=2)
    ap.add_argument("--route-features", type=int, default=500, help="0 to skip")
    ap.add_argument("--logistic-features", type=int, default=200, help="0 to skip")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of ours on Dask, each between two measures of the bound")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_cv.json"))
    args = ap.parse_args(argv)

    root = os.path.join(HERE, "data")
    path, X, ys, names = make_table(args.rows, args.features, args.files, args.seed, root)
    path = with_fold_column(path)
    sd_y = float(np.std(ys["squared"]))
    n = X.shape[0]

    def measure_bound(X, y):
        base = numpy_baselines(path, names, X, y)
        print("single-pass bound: read %.2f s + Gram %.2f s = %.2f s"
              % (base["read_s"], base["gram_s"], base["read_s"] + base["gram_s"]), flush=True)
        return base

    bases = [measure_bound(X, ys["squared"])]
    rows, repeats = [], []
    dask, t_dask = timed(make_engine, "dask", None)
    try:
        for _ in range(max(1, args.repeats)):
            sq, row = run_ours(dask, path, "squared", l1_ratio=L1_RATIOS, alphas=N_ALPHAS)
            assert sq.fold_rows_.sum() == n
            bases.append(measure_bound(X, ys["squared"]))
            around = [b["read_s"] + b["gram_s"] for b in bases[-2:]]
            repeats.append(dict(row, bound_before_s=around[0], bound_after_s=around[1],
                                ratio=row["total_s"] / np.mean(around)))
        rows.append(min(repeats, key=lambda r: abs(r["ratio"] - median_ratio(repeats))))
        del X, ys
        if args.route_features:
            narrow = first_columns(args.route_features)
            for limit in (4096, 0):
                rows.append(run_ours(dask, path, "squared", features=narrow,
                                     l1_ratio=L1_RATIOS, alphas=N_ALPHAS,
                                     gram_max_features=limit)[1])
        if args.logistic_features:
            rows.append(run_ours(dask, path, "logistic", l1_ratio=0.5, alphas=LOGISTIC_ALPHAS,
                                 features=first_columns(args.logistic_features))[1])
    finally:
        dask.close()

    spark_cv = None
    if not args.skip_spark:
        spark, t_spark = timed(spark_session_for_bench)
        engine = make_engine("spark", spark)
        try:
            rows.append(run_ours(engine, path, "squared", l1_ratio=L1_RATIOS,
                                 alphas=N_ALPHAS)[1])
        finally:
            engine.close()
        if args.spark_points:
            spark_cv = run_crossvalidator(spark, path, names, sq, sd_y, n, args.spark_points)
            spark_cv["extrapolated_s"] = spark_cv["per_point_s"] * len(L1_RATIOS) * N_ALPHAS
        spark.stop()

    print("\n%-8s %-8s %-7s %6s %-32s %7s %8s %8s %8s %8s %9s"
          % ("engine", "loss", "route", "p", "grid", "passes", "load s", "stats s", "paths s",
             "total s", "selected"))
    for r in rows:
        print("%-8s %-8s %-7s %6d %-32s %7d %8.2f %8.2f %8.2f %8.2f %9d"
              % (r["engine"], r["loss"], r["route"], r["features"], r["grid"], r["passes"],
                 r["load_s"], r["statistics_s"], r["paths_s"], r["total_s"], r["selected"]))
    print("\nours on Dask against the bound measured before and after it:")
    for r in repeats:
        print("  ours %(total_s)6.2f s (load %(load_s).2f, statistics %(statistics_s).2f, paths "
              "%(paths_s).2f); bound %(bound_before_s).2f / %(bound_after_s).2f s: %(ratio).2fx"
              % r)
    targets = {}
    gram_dask = rows[0]
    targets["squared grid / single-pass bound (<= 2), median of %d" % len(repeats)] = \
        median_ratio(repeats)
    logistic = [r for r in rows if r["loss"] == "logistic"]
    if logistic:
        targets["logistic 5 x 50 path: data passes (<= 100)"] = logistic[0]["passes"]
    if spark_cv is not None:
        print("\nSpark CrossValidator: load %.1f s; %d grid points x %d folds in %.1f s "
              "(%.1f s per grid point); whole %d-point grid extrapolated: %.0f s; mean MSE "
              "vs ours: max rel. diff %.1e"
              % (spark_cv["load_s"], spark_cv["points"], FOLDS, spark_cv["fit_s"],
                 spark_cv["per_point_s"], len(L1_RATIOS) * N_ALPHAS, spark_cv["extrapolated_s"],
                 spark_cv["max_rel_mse_diff"]))
        ours_spark = next(r for r in rows if r["engine"] == "spark")
        targets["CrossValidator (extrapolated) / ours on Dask (>= 100)"] = \
            (spark_cv["load_s"] + spark_cv["extrapolated_s"]) / gram_dask["total_s"]
        targets["CrossValidator (extrapolated) / ours on Spark (>= 100)"] = \
            (spark_cv["load_s"] + spark_cv["extrapolated_s"]) / ours_spark["total_s"]
    print("\ntargets:")
    for k, v in targets.items():
        print("  %-58s %10.2f" % (k, v))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = dict(python=sys.version, machine=platform.machine(), cpus=os.cpu_count(),
                rows=n, features=args.features, files=args.files, dask_start_s=t_dask)
    with open(args.out, "w") as fh:
        json.dump(dict(meta=meta, numpy=bases, bound_s=[b["read_s"] + b["gram_s"] for b in bases],
                       repeats=repeats, ours=rows, crossvalidator=spark_cv, targets=targets),
                  fh, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
