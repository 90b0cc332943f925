"""The Poisson and multinomial losses against R's glmnet and Spark MLlib (issue 19):
a path and a cross-validated path on seeded tables (default 100,000 rows x 2,000
columns), and for the multinomial loss a single fit against Spark MLlib.

Both contenders get the same in-memory data, the same lambdas (glmnet's own
sequence, passed to ours), l1_ratio / glmnet alpha 0.5, and for CV the same 5 folds:

- path: ours ``enet_path(loss=...)`` (local engine, in memory) against
  ``glmnet(family = "poisson" | "multinomial", lambda = ...)`` (multinomial:
  ``type.multinomial = "grouped"``, the same objective); the wall time of each,
  and the largest coefficient difference over the path (glmnet at
  ``thresh = 1e-10``);
- CV: ours ``ElasticNetCV(loss=..., cv=folds)`` against ``cv.glmnet(foldid = ...)``
  (deviance); the time of each and the lambda each chooses by the minimum mean
  deviance.

Counts: 20 of the columns carry effects of 0.05 to 0.2 per standard deviation on the
log mean, which is about exp(0.7) = 2. Classes: 3, drawn from the softmax of 20
informative columns (effects of 0.1 to 0.3 per class).

Spark MLlib (``--spark``, needs pyspark and Java 17): its multinomial
``LogisticRegression`` penalises each coefficient on its own, ours (as glmnet's
grouped family) each feature's norm over the classes: the objectives are the same
only without an L1 part. The benchmark fits both at one ridge penalty
(``elasticNetParam = 0``, ``regParam`` the path's 10th lambda) on the same Spark
DataFrame (``local[2]``, read from Parquet) and reports both times and the largest
coefficient difference, then Spark's fit at ``elasticNetParam = 0.5`` next to ours at
l1_ratio 0.5 (not the same problem: timed only, the selected counts reported). A
ridge fit keeps every feature in Newton's working set, so that one pass costs
``n (C p)^2 / 2``: ``--spark-cols`` (default 200) sets its table's width.

Needs ``Rscript`` with glmnet (``apt-get install r-cran-glmnet``); without it only
ours runs and the benchmark says so. R and Spark are not dependencies of the package
or the tests. Prints a table and writes JSON.

    python benchmarks/bench_families.py [--rows N] [--cols P] [--families poisson,multinomial]
        [--spark] [--spark-cols P] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from elasticnet_dist import ElasticNetCV, enet_path  # noqa: E402
from rscript import has_glmnet, run_r  # noqa: E402

L1_RATIO, N_LAMBDAS, FOLDS, SEED, CLASSES = 0.5, 100, 5, 0, 3

R_POISSON = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); p <- as.integer(args[3])
X <- matrix(readBin(file.path(args[1], "X.bin"), "double", n * p), nrow = n, byrow = TRUE)
y <- readBin(file.path(args[1], "y.bin"), "double", n)
foldid <- readBin(file.path(args[1], "fold.bin"), "integer", n)
t0 <- proc.time()[["elapsed"]]
fit <- glmnet(X, y, family = "poisson", alpha = 0.5, nlambda = 100, thresh = 1e-10)
t1 <- proc.time()[["elapsed"]]
cv <- cv.glmnet(X, y, family = "poisson", alpha = 0.5, lambda = fit$lambda, foldid = foldid)
t2 <- proc.time()[["elapsed"]]
writeBin(as.double(fit$lambda), file.path(args[1], "lambda.bin"))
writeBin(as.double(as.matrix(coef(fit))), file.path(args[1], "coef.bin"))
cat(sprintf("%.4f %.4f %.17g %d\n", t1 - t0, t2 - t1, cv$lambda.min, length(fit$lambda)))
"""

R_MULTINOMIAL = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); p <- as.integer(args[3])
X <- matrix(readBin(file.path(args[1], "X.bin"), "double", n * p), nrow = n, byrow = TRUE)
y <- factor(readBin(file.path(args[1], "y.bin"), "double", n))
foldid <- readBin(file.path(args[1], "fold.bin"), "integer", n)
t0 <- proc.time()[["elapsed"]]
fit <- glmnet(X, y, family = "multinomial", type.multinomial = "grouped", alpha = 0.5,
              nlambda = 100, thresh = 1e-10)
t1 <- proc.time()[["elapsed"]]
cv <- cv.glmnet(X, y, family = "multinomial", type.multinomial = "grouped", alpha = 0.5,
                lambda = fit$lambda, foldid = foldid, type.measure = "deviance")
t2 <- proc.time()[["elapsed"]]
writeBin(as.double(fit$lambda), file.path(args[1], "lambda.bin"))
cf <- coef(fit)  # one (p + 1) x nlambda matrix per class: lambda, class, coefficient
writeBin(as.double(aperm(simplify2array(lapply(cf, as.matrix)), c(1, 3, 2))),
         file.path(args[1], "coef.bin"))
cat(sprintf("%.4f %.4f %.17g %d\n", t1 - t0, t2 - t1, cv$lambda.min, length(fit$lambda)))
"""


def count_table(n, p, seed):
    """Standard normal features, 20 of them informative, counts with mean about 2."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[np.linspace(0, p - 1, 20).astype(int)] = rng.uniform(0.05, 0.2, 20) * rng.choice(
        [-1, 1], 20)
    y = rng.poisson(np.exp(0.7 + X @ w)).astype(np.float64)
    fold = rng.permutation(n) % FOLDS
    return X, y, fold


def class_table(n, p, seed):
    """Standard normal features, 20 of them informative, CLASSES classes from their
    softmax; the labels 0 .. CLASSES - 1 (as floats)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    B = np.zeros((CLASSES, p))
    B[:, np.linspace(0, p - 1, 20).astype(int)] = rng.uniform(0.1, 0.3, (CLASSES, 20)) \
        * rng.choice([-1, 1], (CLASSES, 20))
    eta = X @ B.T
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).astype(np.float64)
    fold = rng.permutation(n) % FOLDS
    return X, y, fold


TABLES = {"poisson": count_table, "multinomial": class_table}
SCRIPTS = {"poisson": R_POISSON, "multinomial": R_MULTINOMIAL}


def run_glmnet(family, X, y, fold, workdir):
    out = run_r(SCRIPTS[family], workdir, X, y, fold)
    path_s, cv_s, lambda_min, n_lambdas = out.split()
    lambdas = np.fromfile(os.path.join(workdir, "lambda.bin"), dtype="<f8")
    shape = (X.shape[1] + 1, CLASSES, int(n_lambdas)) if family == "multinomial" \
        else (int(n_lambdas), X.shape[1] + 1)
    coefs = np.fromfile(os.path.join(workdir, "coef.bin"), dtype="<f8").reshape(shape,
                                                                                order="F")
    if family == "multinomial":  # (coefficient, class, lambda) -> (lambda, class, coefficient)
        coefs = np.transpose(coefs, (2, 1, 0))
    else:
        coefs = np.fromfile(os.path.join(workdir, "coef.bin"), dtype="<f8").reshape(shape)
    return {"path_s": float(path_s), "cv_s": float(cv_s), "lambda_min": float(lambda_min),
            "lambdas": lambdas, "coefs": coefs}


def compare_family(family, rows, cols):
    """Ours against glmnet on one family: path and CV; a dict of results."""
    X, y, fold = TABLES[family](rows, cols, SEED)
    result = {"rows": rows, "cols": cols}
    peer, lambdas = None, N_LAMBDAS
    if has_glmnet():
        workdir = tempfile.mkdtemp(prefix="bench-families-")
        try:
            peer = run_glmnet(family, X, y, fold, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        lambdas = peer["lambdas"]
    else:
        print("Rscript with glmnet not found (apt-get install r-cran-glmnet): glmnet skipped")
    t0 = time.perf_counter()
    path = enet_path(X, y, l1_ratio=L1_RATIO, loss=family, alphas=lambdas, tol=1e-8)
    path_s = time.perf_counter() - t0
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(FOLDS)]
    t0 = time.perf_counter()
    cv = ElasticNetCV(l1_ratio=L1_RATIO, alphas=lambdas, cv=splits, loss=family,
                      selection="min").fit(X, y)
    cv_s = time.perf_counter() - t0
    selected = np.any(np.atleast_2d(cv.coef_) != 0, axis=0)
    result["ours"] = {"path_s": path_s, "path_passes": path.n_passes, "cv_s": cv_s,
                      "cv_passes": cv.n_passes_, "alpha_min": cv.alpha_,
                      "selected_at_min": int(selected.sum())}
    print("%d x %d %s, l1_ratio %g, %d lambdas" % (rows, cols, family, L1_RATIO,
                                                   np.size(lambdas)))
    print("  ours   path %7.2f s (%d passes)   CV %7.2f s (%d passes), lambda.min %.5g, "
          "%d selected" % (path_s, path.n_passes, cv_s, cv.n_passes_, cv.alpha_,
                           selected.sum()))
    if peer is not None:
        reached = path.coefs.shape[-1]
        ours = np.moveaxis(path.coefs, -1, 0)  # lambda first, then (class,) coefficient
        diff = float(np.max(np.abs(ours - peer["coefs"][:reached, ..., 1:])))
        result["glmnet"] = {"path_s": peer["path_s"], "cv_s": peer["cv_s"],
                            "lambda_min": peer["lambda_min"]}
        result["ratio"] = {"path": path_s / peer["path_s"], "cv": cv_s / peer["cv_s"]}
        result["max_coef_difference"] = diff
        result["same_lambda_min"] = bool(np.isclose(cv.alpha_, peer["lambda_min"],
                                                    rtol=1e-9))
        print("  glmnet path %7.2f s               CV %7.2f s, lambda.min %.5g"
              % (peer["path_s"], peer["cv_s"], peer["lambda_min"]))
        print("  ratio  path %.2f, CV %.2f; largest coefficient difference over the path "
              "%.2e; same lambda.min: %s" % (result["ratio"]["path"], result["ratio"]["cv"],
                                            diff, result["same_lambda_min"]))
    return result


def compare_spark(rows, cols):
    """Ours (the Spark engine, :class:`ElasticNetSelector`) against Spark MLlib's
    multinomial LogisticRegression on one DataFrame: a ridge fit (the same problem)
    and an elastic-net fit at l1_ratio 0.5 (not the same problem)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import SparkSession

    from elasticnet_dist.datasets import WideTable, write_parquet
    from elasticnet_dist.spark_ml import ElasticNetSelector

    X, y, _ = class_table(rows, cols, SEED)
    names = ["x%d" % j for j in range(cols)]
    workdir = tempfile.mkdtemp(prefix="bench-families-spark-")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.memory", "8g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    out = {"rows": rows, "cols": cols}
    try:
        folder = os.path.join(workdir, "t")
        write_parquet(WideTable(X, y, None, names), folder, n_files=4)
        df = spark.read.parquet(folder).cache()
        df.count()
        assembled = VectorAssembler(inputCols=names, outputCol="features").transform(df) \
            .select("features", "y").cache()
        assembled.count()
        reg = float(enet_path(X, y, loss="multinomial", l1_ratio=1e-3, alphas=10).alphas[-1])
        for label, mix in (("ridge", 0.0), ("l1_ratio 0.5", 0.5)):
            t0 = time.perf_counter()
            theirs = LogisticRegression(labelCol="y", family="multinomial", regParam=reg,
                                        elasticNetParam=mix, standardization=True,
                                        tol=1e-10, maxIter=1000).fit(assembled)
            spark_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model = ElasticNetSelector(featuresCols=names, labelCol="y", family="multinomial",
                                       regParam=reg, elasticNetParam=mix, tol=1e-10).fit(df)
            ours_s = time.perf_counter() - t0
            by_name = {f["name"]: f["class_coefficients"] for f in model.manifest["selected"]}
            ours = np.array([by_name.get(n, [0.0] * CLASSES) for n in names]).T
            theirs_w = theirs.coefficientMatrix.toArray()
            entry = {"regParam": reg, "elasticNetParam": mix, "ours_s": ours_s,
                     "spark_s": spark_s, "ratio": ours_s / spark_s,
                     "ours_passes": model.manifest["solver"]["data_passes"],
                     "spark_iterations": theirs.summary.totalIterations,
                     "ours_selected": len(by_name),
                     "spark_selected": int(np.sum(np.any(theirs_w != 0, axis=0)))}
            if mix == 0.0:
                entry["max_coef_difference"] = float(np.max(np.abs(ours - theirs_w)))
            out[label] = entry
            print("  spark  %-12s ours %7.2f s (%d passes), Spark MLlib %7.2f s (%d "
                  "iterations), ratio %.2f%s" % (
                      label, ours_s, entry["ours_passes"], spark_s,
                      entry["spark_iterations"], entry["ratio"],
                      ", largest coefficient difference %.2e" % entry["max_coef_difference"]
                      if mix == 0.0 else ", selected %d / %d (not the same problem)"
                      % (entry["ours_selected"], entry["spark_selected"])))
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=2_000)
    ap.add_argument("--families", default="poisson,multinomial")
    ap.add_argument("--spark", action="store_true", help="the multinomial fit against Spark")
    ap.add_argument("--spark-cols", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_families.json"))
    args = ap.parse_args()
    result = {"l1_ratio": L1_RATIO, "folds": FOLDS,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    for family in args.families.split(","):
        result[family] = compare_family(family, args.rows, args.cols)
    if args.spark:
        result["spark_multinomial"] = compare_spark(args.rows, args.spark_cols)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
