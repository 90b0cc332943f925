"""The Poisson loss against R's glmnet (issue 19): a path and a cross-validated path
on a seeded table of counts (default 100,000 rows x 2,000 columns).

Both contenders get the same in-memory data, the same 100 lambdas (glmnet's own
sequence, passed to ours), l1_ratio / glmnet alpha 0.5, and for CV the same 5 folds:

- path: ours ``enet_path(loss="poisson")`` (local engine, in memory) against
  ``glmnet(family = "poisson", lambda = ...)``; the wall time of each, and the
  largest coefficient difference over the path (glmnet at ``thresh = 1e-10``);
- CV: ours ``ElasticNetCV(loss="poisson", cv=folds)`` against
  ``cv.glmnet(family = "poisson", foldid = ...)``; the time of each and the
  lambda each chooses by the minimum mean deviance.

Counts: 20 of the columns carry effects of 0.05 to 0.2 per standard deviation on the
log mean, which is about exp(0.7) = 2.

Needs ``Rscript`` with glmnet (``apt-get install r-cran-glmnet``); without it only
ours runs and the benchmark says so. R is not a dependency of the package or the
tests. Prints a table and writes JSON.

    python benchmarks/bench_families.py [--rows N] [--cols P] [--out FILE]
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

L1_RATIO, N_LAMBDAS, FOLDS, SEED = 0.5, 100, 5, 0

R_SCRIPT = r"""
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


def run_glmnet(X, y, fold, workdir):
    out = run_r(R_SCRIPT, workdir, X, y, fold)
    path_s, cv_s, lambda_min, n_lambdas = out.split()
    lambdas = np.fromfile(os.path.join(workdir, "lambda.bin"), dtype="<f8")
    coefs = np.fromfile(os.path.join(workdir, "coef.bin"), dtype="<f8").reshape(
        int(n_lambdas), X.shape[1] + 1)
    return {"path_s": float(path_s), "cv_s": float(cv_s), "lambda_min": float(lambda_min),
            "lambdas": lambdas, "coefs": coefs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=2_000)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_families.json"))
    args = ap.parse_args()
    X, y, fold = count_table(args.rows, args.cols, SEED)
    glmnet = has_glmnet()
    result = {"rows": args.rows, "cols": args.cols, "l1_ratio": L1_RATIO, "folds": FOLDS,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if glmnet:
        workdir = tempfile.mkdtemp(prefix="bench-families-")
        try:
            peer = run_glmnet(X, y, fold, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        lambdas = peer["lambdas"]
    else:
        print("Rscript with glmnet not found (apt-get install r-cran-glmnet): glmnet skipped")
        peer, lambdas = None, N_LAMBDAS
    t0 = time.perf_counter()
    path = enet_path(X, y, l1_ratio=L1_RATIO, loss="poisson", alphas=lambdas, tol=1e-8)
    path_s = time.perf_counter() - t0
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(FOLDS)]
    t0 = time.perf_counter()
    cv = ElasticNetCV(l1_ratio=L1_RATIO, alphas=lambdas, cv=splits, loss="poisson",
                      selection="min").fit(X, y)
    cv_s = time.perf_counter() - t0
    result["ours"] = {"path_s": path_s, "path_passes": path.n_passes, "cv_s": cv_s,
                      "cv_passes": cv.n_passes_, "alpha_min": cv.alpha_,
                      "selected_at_min": int(np.count_nonzero(cv.coef_))}
    print("%d x %d Poisson, l1_ratio %g, %d lambdas" % (args.rows, args.cols, L1_RATIO,
                                                        np.size(lambdas)))
    print("  ours   path %7.2f s (%d passes)   CV %7.2f s (%d passes), lambda.min %.5g"
          % (path_s, path.n_passes, cv_s, cv.n_passes_, cv.alpha_))
    if peer is not None:
        reached = path.coefs.shape[1]
        diff = float(np.max(np.abs(path.coefs.T - peer["coefs"][:reached, 1:])))
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
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
