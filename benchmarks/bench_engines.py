"""Engines benchmark: elasticnet_dist on Dask and Spark against Spark MLlib and dask-ml.

One seeded partitioned Parquet table (n rows x p AR(1)-correlated columns on
scales 1e-3..1e3, ``--files`` files, two labels: ``y`` for the squared loss,
``yb`` for the logistic loss), l1_ratio 0.5, alpha chosen so that 100-300
features are selected. Every peer gets the same problem in its own
parameterisation, mapped exactly:

- Spark MLlib ``LinearRegression`` (solvers "normal" and "l-bfgs") and
  ``LogisticRegression`` with ``elasticNetParam``: (regParam, elasticNetParam)
  from :func:`elasticnet_dist.penalty.native_to_peer` (population standard
  deviations for "normal", sample ones for the iterative solvers);
- dask-ml ``LinearRegression`` / ``LogisticRegression(penalty="elastic_net")``
  (solver proximal_grad, see DASK_ML_SOLVER) on the standardized table
  (dask-ml does not standardize), with ``C = 1 / (2 n alpha)`` (squared;
  dask-glm's loss is the plain sum of squares) or ``1 / (n alpha)``
  (logistic); dask-glm's elastic net is fixed at an L1 share of 0.5, which is
  why l1_ratio is 0.5 here.

Every solution is scored on our objective against a high-precision solution.
Prints wall time (load and fit apart), data passes, relative suboptimality and
selected count; then one pass on each engine against the same arithmetic in one
NumPy process; then the issue's targets. Writes JSON.

    python benchmarks/bench_engines.py [--rows N] [--features P] [--files F]
        [--large-rows N] [--skip-peers] [--out FILE]

The larger table (``--large-rows``, default 250,000 rows) runs our engines and
the NumPy baselines only: Spark MLlib needs minutes per fit there.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from bench_core import TARGET, choose_alpha, objective  # noqa: E402

from elasticnet_dist import ElasticNet  # noqa: E402
from elasticnet_dist.datasets import make_wide_table, write_parquet  # noqa: E402
from elasticnet_dist.engines import make_engine  # noqa: E402
from elasticnet_dist.loading import load_table  # noqa: E402
from elasticnet_dist.passes import PassRequest  # noqa: E402
from elasticnet_dist.sources import EngineSource  # noqa: E402
from elasticnet_dist.penalty import native_to_peer  # noqa: E402
from elasticnet_dist.solvers import fit_elastic_net  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = {"squared": "y", "logistic": "yb"}
TOL = 1e-7
#: dask-ml's default solver, "admm", ran for more than 16 minutes on the
#: 100,000 x 2,000 table (each iteration solves an L-BFGS problem per chunk)
#: before we stopped it; proximal gradient (100 iterations, its default cap) is
#: the one that finishes, and it uses the same (identity) elastic-net prox.
DASK_ML_SOLVER = "proximal_grad"


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


# ---- data ----------------------------------------------------------------------------
def table_arguments(ap):
    """The flags that choose the benchmark table (shared by the table's benchmarks)."""
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)


def make_table(rows, features, files, seed, root):
    """The Parquet table (cached on disk by its shape) and the in-memory arrays."""
    sq = make_wide_table(rows, features, n_informative=150, seed=seed)
    lg = make_wide_table(rows, features, n_informative=150, seed=seed, loss="logistic")
    assert np.array_equal(sq.X, lg.X)  # same seed: same columns, two labels
    path = os.path.join(root, "wide-%d-%d-%d-%d" % (rows, features, files, seed))
    if not os.path.exists(os.path.join(path, "_done")):
        shutil.rmtree(path, ignore_errors=True)
        write_parquet(sq, path, n_files=files, extra_columns={"yb": lg.y})
        open(os.path.join(path, "_done"), "w").close()
    return path, sq.X, {"squared": sq.y, "logistic": lg.y}, sq.names


def numpy_baselines(path, names, X, y):
    """Read the table into one NumPy array; its Gram matrix; one gradient pass."""
    def read():
        table = pq.read_table(path, columns=names)
        return np.asarray(table.to_tensor(null_to_nan=True, row_major=False))
    Xr, t_read = timed(read)
    assert Xr.shape == X.shape
    del Xr
    _, t_gram = timed(lambda: X.T @ X)
    w = np.random.default_rng(0).normal(0, 1e-3, X.shape[1])

    def grad_pass():
        r = X @ w + 0.5 - y
        return X.T @ r, 0.5 * (r @ r)
    t_pass = min(timed(grad_pass)[1] for _ in range(5))
    return {"read_s": t_read, "gram_s": t_gram, "pass_s": t_pass}


def pass_request(p):
    w = np.random.default_rng(0).normal(0, 1e-3, p)
    return PassRequest(loss="squared", coefs=w[None, :], intercepts=np.array([0.5]))


# ---- ours ------------------------------------------------------------------------------
def run_ours(engine, path, names, problems, label_of):
    """Load + fit on one engine for each loss; plus the time of one gradient pass."""
    rows = []
    pass_s = None
    for loss, prob in problems.items():
        loaded, t_load = timed(load_table, path, engine, label=label_of[loss], features=["f*"])
        assert list(loaded.plan.features) == names
        passes0 = engine.n_passes
        fit, t_fit = timed(fit_elastic_net, EngineSource(engine), loss=loss, alpha=prob["alpha"],
                           l1_ratio=prob["l1_ratio"], tol=TOL, max_iter=1000)
        rows.append(dict(contender="elasticnet_dist on %s (%s)" % (engine.name, fit.solver),
                         loss=loss, load_s=t_load, fit_s=t_fit, passes=engine.n_passes - passes0,
                         b=fit.intercept, w=fit.coef, timings=fit.timings,
                         partitions=engine.n_partitions, bytes_cached=engine.bytes_cached))
        if pass_s is None:
            source = EngineSource(engine)
            req = pass_request(len(names))
            source.run_pass(req)  # warm
            pass_s = min(timed(source.run_pass, req)[1] for _ in range(5))
    return rows, pass_s


# ---- Spark MLlib ----------------------------------------------------------------------------
def spark_session_for_bench():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench_engines")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.memory", "10g").config("spark.driver.maxResultSize", "0")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def load_assembled(spark, path, names, columns):
    """The table as Spark ML wants it: ``names`` assembled into a ``features``
    vector, with ``columns`` beside it, cached and counted (so that the load is timed)."""
    from pyspark.ml.feature import VectorAssembler

    df = spark.read.parquet(path)
    df = VectorAssembler(inputCols=names, outputCol="features").transform(df)
    df = df.select("features", *columns).cache()
    df.count()
    return df


def run_mllib(spark, path, names, problems, sd_y):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.regression import LinearRegression

    df, t_load = timed(load_assembled, spark, path, names, ["y", "yb"])
    n = problems["squared"]["n"]
    c = np.sqrt(n / (n - 1.0))
    rows = []
    for loss, solver in (("squared", "normal"), ("squared", "l-bfgs"), ("logistic", "l-bfgs")):
        prob = problems[loss]
        corr = 1.0 if solver == "normal" else c
        lam, enp = native_to_peer(prob["alpha"], prob["l1_ratio"], loss=loss,
                                  sd_y=sd_y[loss], variance_correction=corr)
        if loss == "squared":
            est = LinearRegression(featuresCol="features", labelCol="y", regParam=lam,
                                   elasticNetParam=enp, standardization=True, solver=solver,
                                   maxIter=1000, tol=1e-6)
        else:
            est = LogisticRegression(featuresCol="features", labelCol="yb", regParam=lam,
                                     elasticNetParam=enp, standardization=True, maxIter=1000,
                                     tol=1e-6, family="binomial")
        try:
            model, t_fit = timed(est.fit, df)
        except Exception as exc:  # a peer's failure is a result, not a crash
            rows.append(dict(contender="Spark MLlib %s" % solver, loss=loss, load_s=t_load,
                             error="%s: %s" % (type(exc).__name__, str(exc)[:300])))
            continue
        summary = getattr(model, "summary", None)
        iters = getattr(summary, "totalIterations", -1) if summary is not None else -1
        rows.append(dict(contender="Spark MLlib %s %s" % (
            "LinearRegression" if loss == "squared" else "LogisticRegression", solver),
            loss=loss, load_s=t_load, fit_s=t_fit, passes=int(iters),
            b=float(model.intercept), w=model.coefficients.toArray()))
    df.unpersist()
    return rows


# ---- dask-ml ------------------------------------------------------------------------------
def run_dask_ml(client, path, names, problems):
    import dask.array as da
    import dask.dataframe as dd
    from dask_ml.linear_model import LinearRegression, LogisticRegression

    def load():
        ddf = dd.read_parquet(path, columns=names + ["y", "yb"])
        X = ddf[names].to_dask_array().compute_chunk_sizes()
        mean, sd = da.compute(X.mean(axis=0), X.std(axis=0))
        Z = ((X - mean) / sd).persist()
        ys = {loss: ddf[label].to_dask_array().compute_chunk_sizes().rechunk(
            (Z.chunks[0],)).persist() for loss, label in LABELS.items()}
        return Z, ys, mean, sd
    (Z, ys, mean, sd), t_load = timed(load)
    n = problems["squared"]["n"]
    rows = []
    for loss, prob in problems.items():
        assert prob["l1_ratio"] == 0.5, "dask-glm's elastic net has a fixed L1 share of 0.5"
        C = 1.0 / ((2.0 if loss == "squared" else 1.0) * n * prob["alpha"])
        cls = LinearRegression if loss == "squared" else LogisticRegression
        est = cls(penalty="elastic_net", C=C, solver=DASK_ML_SOLVER, fit_intercept=True,
                  max_iter=100)
        try:
            _, t_fit = timed(est.fit, Z, ys[loss])
        except Exception as exc:
            rows.append(dict(contender="dask-ml %s %s" % (cls.__name__, DASK_ML_SOLVER), loss=loss,
                             load_s=t_load, error="%s: %s" % (type(exc).__name__, str(exc)[:300])))
            continue
        u = np.asarray(est.coef_).ravel()
        w = u / sd
        b = float(np.ravel(est.intercept_)[0]) - float(mean @ w)
        rows.append(dict(contender="dask-ml %s %s" % (cls.__name__, DASK_ML_SOLVER), loss=loss,
                         load_s=t_load,
                         fit_s=t_fit, passes=-1, b=b, w=w))
    return rows


# ---- scoring and printing ------------------------------------------------------------------
def score(rows, X, problems):
    sd = X.std(0)
    for r in rows:
        if "w" not in r:
            continue
        prob = problems[r["loss"]]
        f = objective(X, prob["y"], r.pop("b"), r["w"], prob["alpha"], prob["l1_ratio"],
                      r["loss"], sd)
        r["rel_subopt"] = (f - prob["f_star"]) / abs(prob["f_star"])
        r["selected"] = int(np.count_nonzero(r.pop("w")))
        r["total_s"] = r["load_s"] + r["fit_s"]


def print_rows(title, rows):
    print("\n%s" % title)
    print("%-9s %-48s %8s %8s %8s %7s %10s %8s" % ("loss", "contender", "load s", "fit s",
                                                   "total s", "passes", "rel subopt", "selected"))
    for r in rows:
        if "error" in r:
            print("%-9s %-48s failed: %s" % (r["loss"], r["contender"], r["error"]))
            continue
        print("%-9s %-48s %8.2f %8.2f %8.2f %7d %10.1e %8d" % (
            r["loss"], r["contender"], r["load_s"], r["fit_s"], r["total_s"], r["passes"],
            max(r["rel_subopt"], 0.0), r["selected"]))


def targets(rows, base, passes):
    """The issue's speed targets as ratios measured in this run."""
    ok = [r for r in rows if "error" not in r]

    def best(prefix, loss, key):
        vals = [r[key] for r in ok if r["contender"].startswith(prefix) and r["loss"] == loss]
        return min(vals) if vals else float("nan")
    out = {}
    for loss in ("squared", "logistic"):
        ours_dask = best("elasticnet_dist on dask", loss, "total_s")
        out["%s: MLlib best load+fit / ours on Dask load+fit (>= 5)" % loss] = \
            best("Spark MLlib", loss, "total_s") / ours_dask
        out["%s: MLlib best fit / ours on Spark fit, same session (>= 3)" % loss] = \
            best("Spark MLlib", loss, "fit_s") / best("elasticnet_dist on spark", loss, "fit_s")
    out["squared: ours on Dask load+fit / NumPy read+Gram (<= 1.5)"] = \
        best("elasticnet_dist on dask", "squared", "total_s") / (base["read_s"] + base["gram_s"])
    for name, limit in (("dask", 1.5), ("spark", 4.0)):
        if name in passes:
            out["one pass on %s / NumPy pass (<= %g)" % (name, limit)] = \
                passes[name] / base["pass_s"]
    return out


def run_table(args, rows_n, with_peers):
    root = os.path.join(HERE, "data")
    t0 = time.perf_counter()
    path, X, ys, names = make_table(rows_n, args.features, args.files, args.seed, root)
    print("table %s: %d x %d in %d files (made in %.1f s)"
          % (path, rows_n, args.features, args.files, time.perf_counter() - t0), flush=True)
    problems = {}
    for loss, y in ys.items():
        alpha, k = choose_alpha(X, y, loss, 0.5)
        hp = ElasticNet(alpha=alpha, l1_ratio=0.5, loss=loss, tol=1e-13, max_iter=5000).fit(X, y)
        f_star = objective(X, y, hp.intercept_, hp.coef_, alpha, 0.5, loss, X.std(0))
        problems[loss] = dict(alpha=alpha, l1_ratio=0.5, y=y, f_star=f_star, n=rows_n,
                              selected_hp=int(np.count_nonzero(hp.coef_)))
        print("  %s: alpha=%.4g selects %d features" % (loss, alpha, k), flush=True)
    base = numpy_baselines(path, names, X, ys["squared"])
    print("  NumPy: read %.2f s, Gram %.2f s, one gradient pass %.3f s"
          % (base["read_s"], base["gram_s"], base["pass_s"]), flush=True)
    rows, passes, starts = [], {}, {}

    engine, starts["dask"] = timed(make_engine, "dask")
    try:
        got, passes["dask"] = run_ours(engine, path, names, problems, LABELS)
        rows += got
        engine._release()
        if with_peers:
            rows += guarded(run_dask_ml, engine.client, path, names, problems, "dask-ml")
    finally:
        engine.close()
    print("  Dask done", flush=True)

    spark, starts["spark"] = timed(spark_session_for_bench)
    try:
        engine = make_engine("spark", spark)
        got, passes["spark"] = run_ours(engine, path, names, problems, LABELS)
        rows += got
        engine.close()
        if with_peers:
            sd_y = {loss: float(np.std(y)) for loss, y in ys.items()}
            rows += guarded(run_mllib, spark, path, names, problems, sd_y, "Spark MLlib")
    finally:
        spark.stop()
    score(rows, X, problems)
    title = "n = %d, p = %d, %d files; l1_ratio 0.5; selected at high precision: %s" % (
        rows_n, args.features, args.files,
        {k: v["selected_hp"] for k, v in problems.items()})
    print_rows(title, rows)
    print("  one pass: NumPy %.3f s, Dask %.3f s, Spark %.3f s; cluster start: Dask %.1f s, "
          "Spark %.1f s" % (base["pass_s"], passes["dask"], passes["spark"], starts["dask"],
                            starts["spark"]))
    ratios = targets(rows, base, passes)
    for k, v in ratios.items():
        print("  %-66s %6.2f" % (k, v))
    for p in problems.values():
        p.pop("y")
    return dict(rows=rows_n, features=args.features, files=args.files, problems=problems,
                numpy=base, pass_s=passes, start_s=starts, results=rows, targets=ratios)


def guarded(fn, *args):
    *args, name = args
    try:
        return fn(*args)
    except ImportError as exc:
        print("skipping %s: %s" % (name, exc), file=sys.stderr)
    except Exception:
        traceback.print_exc()
        print("%s failed; see above" % name, file=sys.stderr)
    return []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    table_arguments(ap)
    ap.add_argument("--large-rows", type=int, default=250_000, help="0 to skip")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_engines.json"))
    args = ap.parse_args(argv)
    assert TARGET  # the selected-count window shared with bench_core
    results = [run_table(args, args.rows, not args.skip_peers)]
    if args.large_rows:
        results.append(run_table(args, args.large_rows, False))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = dict(python=sys.version, machine=platform.machine(), cpus=os.cpu_count())
    with open(args.out, "w") as fh:
        json.dump(dict(meta=meta, tables=results), fh, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
