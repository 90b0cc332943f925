"""Wide tables against R's cv.glmnet (issue 18): the five real tables of ../shared.

For each table (rows x columns, its 0/1 label with the logistic loss; riboflavin's
continuous label with the squared loss; ``--both-losses`` adds the squared loss on
the 0/1 labels), both contenders get the same 5 folds (stratified by class,
seeded) and the same grid size (100 alphas for each of l1_ratio / glmnet's alpha
0.5, 0.9 and 1):

- ours: ``ElasticNetCV`` with the stage's defaults (1se rule, glmnet's devmax and
  fdev stops, early stopping once the CV curve has turned) on the in-memory arrays,
  local engine; wall time of ``fit``, the route, data passes, features selected;
  and the same without early stopping (``whole grid``: every alpha glmnet walks);
- glmnet: ``cv.glmnet`` (Debian's ``r-cran-glmnet``, in memory, single-threaded)
  for alpha 0.5, 0.9 and 1 with ``foldid``, the time of the three calls inside R
  (reading the data excluded), and the features at ``lambda.1se`` of the alpha
  with the lowest ``cvm`` at ``lambda.min``.

Needs ``Rscript`` with glmnet (``apt-get install r-cran-glmnet``); without it the
glmnet column is empty and the benchmark says so. R is not a dependency of the
package or of the tests. Prints a table with the ratio ours / glmnet and writes JSON.

    python benchmarks/bench_wide.py [--tables A,B] [--both-losses] [--out FILE]
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
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from elasticnet_dist import ElasticNetCV  # noqa: E402
from elasticnet_dist.params import PARAMS  # noqa: E402
from rscript import has_glmnet, run_r  # noqa: E402

REAL = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "real")
TABLES = ("riboflavin", "ALLAML", "Prostate_GE", "BASEHOCK", "arcene")
L1_RATIOS = (0.5, 0.9, 1.0)
FOLDS, N_ALPHAS, SEED = 5, 100, 0

R_SCRIPT = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); p <- as.integer(args[3]); family <- args[4]
X <- matrix(readBin(file.path(args[1], "X.bin"), "double", n * p), nrow = n, byrow = TRUE)
y <- readBin(file.path(args[1], "y.bin"), "double", n)
foldid <- readBin(file.path(args[1], "fold.bin"), "integer", n)
best <- Inf; chosen <- NA; counts <- c()
t0 <- proc.time()[["elapsed"]]
for (a in c(0.5, 0.9, 1)) {
  fit <- cv.glmnet(X, y, family = family, alpha = a, nlambda = 100, foldid = foldid)
  k <- sum(coef(fit, s = "lambda.1se")[-1] != 0)
  counts <- c(counts, k)
  m <- min(fit$cvm)
  if (m < best) { best <- m; chosen <- k }
}
t1 <- proc.time()[["elapsed"]]
cat(sprintf("%.4f %d %s\n", t1 - t0, chosen, paste(counts, collapse = ",")))
"""


def stratified_folds(y, k, seed):
    """Fold of every row: each class shuffled (seeded) and dealt round the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(y.shape[0], dtype=np.int64)
    for value in np.unique(y) if np.unique(y).size <= 2 else [None]:
        rows = np.flatnonzero(y == value) if value is not None else np.arange(y.shape[0])
        fold[rng.permutation(rows)] = np.arange(rows.size) % k
    return fold


def read_table(name):
    table = pq.read_table(os.path.join(REAL, name, "%s.parquet" % name))
    y = table.column("y").to_numpy().astype(np.float64)
    X = np.column_stack([table.column(c).to_numpy().astype(np.float64)
                         for c in table.column_names if c != "y"])
    return X, y


def run_ours(X, y, loss, fold, early_stop=PARAMS["early_stop"].stage):
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(FOLDS)]
    est = ElasticNetCV(l1_ratio=list(L1_RATIOS), alphas=N_ALPHAS, cv=splits, loss=loss,
                       selection=PARAMS["selection"].stage, devmax=PARAMS["devmax"].stage,
                       fdev=PARAMS["fdev"].stage, max_iter=PARAMS["max_iter"].stage,
                       early_stop=early_stop)
    t0 = time.perf_counter()
    est.fit(X, y)
    return {"fit_s": time.perf_counter() - t0, "route": est.route_, "passes": est.n_passes_,
            "selected": int(np.count_nonzero(est.coef_)), "l1_ratio": est.l1_ratio_,
            "alpha": est.alpha_, "timings": est.timings_}


def run_glmnet(X, y, loss, fold, workdir):
    family = "gaussian" if loss == "squared" else "binomial"
    seconds, chosen, counts = run_r(R_SCRIPT, workdir, X, y, fold, family).split()
    return {"fit_s": float(seconds), "selected": int(chosen),
            "selected_per_alpha": [int(c) for c in counts.split(",")]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--both-losses", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_wide.json"))
    args = ap.parse_args()
    if not os.path.isdir(REAL):
        sys.exit("needs the real tables in %s (the project's ../shared folder)" % REAL)
    glmnet = has_glmnet()
    if not glmnet:
        print("Rscript with glmnet not found (apt-get install r-cran-glmnet): glmnet skipped")
    rows = []
    workdir = tempfile.mkdtemp(prefix="bench-wide-")
    try:
        for name in args.tables.split(","):
            X, y = read_table(name)
            binary = np.unique(y).size == 2
            losses = (["logistic"] + (["squared"] if args.both_losses else [])) if binary \
                else ["squared"]
            fold = stratified_folds(y, FOLDS, SEED)
            for loss in losses:
                row = {"table": name, "rows": X.shape[0], "columns": X.shape[1], "loss": loss,
                       "ours": run_ours(X, y, loss, fold),
                       "ours_whole_grid": run_ours(X, y, loss, fold, early_stop=None)}
                if glmnet:
                    row["glmnet"] = run_glmnet(X, y, loss, fold, workdir)
                    row["ratio"] = row["ours"]["fit_s"] / row["glmnet"]["fit_s"]
                    row["ratio_whole_grid"] = (row["ours_whole_grid"]["fit_s"]
                                               / row["glmnet"]["fit_s"])
                rows.append(row)
                ours, whole, peer = row["ours"], row["ours_whole_grid"], row.get("glmnet", {})
                print("%-12s %5d x %5d %-8s ours %7.2f s (%s, %3d passes, %3d selected) | "
                      "whole grid %7.2f s (%3d passes, %3d selected) | glmnet %s | ratios %s"
                      % (name, X.shape[0], X.shape[1], loss, ours["fit_s"], ours["route"],
                         ours["passes"], ours["selected"], whole["fit_s"], whole["passes"],
                         whole["selected"],
                         "%6.2f s (%3d selected)" % (peer["fit_s"], peer["selected"])
                         if peer else "-",
                         "%.2f, %.2f" % (row["ratio"], row["ratio_whole_grid"]) if peer
                         else "-"), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                   "folds": FOLDS, "n_alphas": N_ALPHAS, "l1_ratios": L1_RATIOS,
                   "glmnet": glmnet, "rows": rows}, f, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
