"""Sparse rows against the same data dense (issue 19, point 4): time and memory.

A seeded CSR table (default 100,000 rows x 20,000 columns at 1% density, 20
informative columns) is fitted in memory on the local engine, once as the
``scipy.sparse`` matrix and once as the same values in a dense float64 array
(16 GB at the default size: the machine needs about 18 GB free for it; a case that
fails, e.g. killed for memory, is recorded as such and the run goes on):

- ``fit``: ``ElasticNet`` at alpha = alpha_max / 10, l1_ratio 0.9, squared and
  logistic (the label a Bernoulli draw of the same predictor);
- ``search``: ``ElasticNetCV`` with 3 folds, l1_ratio 1, 30 alphas, the stage's
  stops (glmnet's devmax and fdev) and ``max_features=500`` (the paths end before
  that many features enter: without it the logistic working sets grow past 2,000
  features on this table, and the driver's Hessian blocks and models with them),
  logistic (``--search-dense`` also runs it dense).

Peers in the same run where installed: scikit-learn's ``ElasticNet`` on the same
CSR matrix (squared loss, ``standardize=False`` on ours, the same objective), its
time and the largest coefficient difference.

Each case runs in a fresh process that builds the table, then resets the kernel's
peak-RSS mark (``/proc/self/clear_refs``) before fitting: ``peak_fit_gb`` is the
process's peak during the fit alone (the table included), ``x_gb`` the table's own
bytes (CSR: values, indices, row pointers) and ``rss_before_gb`` the resident memory
when the fit starts. Prints a table and writes JSON.

    python benchmarks/bench_sparse.py [--rows N] [--cols P] [--density D]
        [--search-dense] [--skip-dense] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from memory import reset_peak, status_gb  # noqa: E402

SEED, N_INFORMATIVE, L1_RATIO, ALPHA_DIVISOR = 0, 20, 0.9, 10


def make_table(n, p, density, loss):
    """The CSR matrix (float64, sorted indices) and the label of the benchmark."""
    import scipy.sparse as sp

    rng = np.random.default_rng(SEED)
    nnz = int(n * p * density)
    rows = np.sort(rng.integers(0, n, nnz))
    cols = rng.integers(0, p, nnz)
    X = sp.csr_matrix((rng.standard_normal(nnz) + 1.0, (rows, cols)), shape=(n, p))
    X.sum_duplicates()
    w = np.zeros(p)
    w[:N_INFORMATIVE] = rng.uniform(1.0, 3.0, N_INFORMATIVE) * rng.choice([-1, 1], N_INFORMATIVE)
    eta = np.asarray(X @ w).ravel()
    eta = (eta - eta.mean()) / eta.std()
    if loss == "squared":
        y = eta + 0.5 * rng.standard_normal(n)
    else:
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-2.0 * eta))).astype(np.float64)
    return X, y


def densify(X):
    """The CSR matrix as a C-ordered float64 array, filled row block by row block."""
    D = np.zeros(X.shape)
    step = 4096
    for i in range(0, X.shape[0], step):
        D[i:i + step] = X[i:i + step].toarray()
    return D


def run_case(n, p, density, case, form):
    """One case in this process; prints its JSON line."""
    from elasticnet_dist import ElasticNet, ElasticNetCV, alpha_max

    loss = "squared" if case in ("fit-squared", "sklearn") else "logistic"
    X, y = make_table(n, p, density, loss)
    if form == "dense":
        X = densify(X)
    x_bytes = X.nbytes if form == "dense" else X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    reset_peak()
    out = {"x_gb": x_bytes / 1e9, "rss_before_gb": status_gb("VmRSS")}
    standardize = case != "sklearn"
    if case == "search":
        t0 = time.perf_counter()
        from elasticnet_dist.params import PARAMS

        est = ElasticNetCV(loss=loss, l1_ratio=[1.0], alphas=30, cv=3,
                           devmax=PARAMS["devmax"].stage, fdev=PARAMS["fdev"].stage,
                           max_features=500).fit(X, y)
        out.update(seconds=time.perf_counter() - t0, passes=est.n_passes_, route=est.route_,
                   alpha=est.alpha_)
    else:
        alpha = alpha_max(X, y, l1_ratio=L1_RATIO, loss=loss,
                          standardize=standardize) / ALPHA_DIVISOR
        t0 = time.perf_counter()
        est = ElasticNet(alpha=alpha, l1_ratio=L1_RATIO, loss=loss,
                         standardize=standardize).fit(X, y)
        out.update(seconds=time.perf_counter() - t0, passes=est.n_passes_, alpha=alpha)
        if case == "sklearn":
            from sklearn.linear_model import ElasticNet as SkElasticNet

            t0 = time.perf_counter()
            sk = SkElasticNet(alpha=alpha, l1_ratio=L1_RATIO, tol=1e-10,
                              max_iter=100_000).fit(X, y)
            out.update(peer_seconds=time.perf_counter() - t0,
                       max_coef_diff=float(np.max(np.abs(sk.coef_ - est.coef_))))
    out.update(selected=int(np.count_nonzero(est.coef_)), peak_fit_gb=status_gb("VmHWM"),
               coef=est.coef_[:N_INFORMATIVE].tolist())
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=20_000)
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--search-dense", action="store_true")
    ap.add_argument("--skip-dense", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_sparse.json"))
    ap.add_argument("--case", nargs=2, metavar=("CASE", "FORM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        return run_case(args.rows, args.cols, args.density, *args.case)
    cases = [("fit-squared", "sparse"), ("fit-squared", "dense"), ("fit-logistic", "sparse"),
             ("fit-logistic", "dense"), ("search", "sparse"), ("search", "dense")]
    try:
        import sklearn  # noqa: F401

        cases.append(("sklearn", "sparse"))
    except ImportError:
        print("scikit-learn is not installed: its ElasticNet on the sparse table is skipped")
    rows = []
    for case, form in cases:
        if form == "dense" and (args.skip_dense or (case == "search" and not args.search_dense)):
            continue
        done = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--cols",
                               str(args.cols), "--density", str(args.density), "--case", case,
                               form], capture_output=True, text=True)
        if done.returncode != 0:  # e.g. killed for memory: recorded, and the run goes on
            print("%-13s %-6s failed (exit %d%s)%s" % (
                case, form, done.returncode, ": killed, out of memory?"
                if done.returncode == -9 else "", done.stderr[-2000:]), flush=True)
            rows.append({"case": case, "form": form, "failed": done.returncode})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(case=case, form=form)
        rows.append(row)
        peer = (" | scikit-learn %.2f s (ours / sklearn %.2f), max |coef diff| %.1e"
                % (row["peer_seconds"], row["seconds"] / row["peer_seconds"],
                   row["max_coef_diff"]) if "peer_seconds" in row else "")
        print("%-13s %-6s %8.2f s %4d passes %5d selected  X %6.2f GB, RSS %6.2f GB at the "
              "start, peak %6.2f GB%s" % (case, form, row["seconds"], row["passes"],
                                          row["selected"], row["x_gb"], row["rss_before_gb"],
                                          row["peak_fit_gb"], peer), flush=True)
    ratios = {}
    for case in ("fit-squared", "fit-logistic", "search"):
        pair = {r["form"]: r for r in rows if r["case"] == case and "failed" not in r}
        if len(pair) == 2:
            s, d = pair["sparse"], pair["dense"]
            ratios[case] = {"time_dense_over_sparse": d["seconds"] / s["seconds"],
                            "peak_dense_over_sparse": d["peak_fit_gb"] / s["peak_fit_gb"],
                            "max_coef_diff": float(np.max(np.abs(np.subtract(s["coef"],
                                                                             d["coef"]))))}
            print("%-13s dense / sparse: time %.1fx, peak RSS %.1fx; informative coefficients "
                  "differ by %.1e" % (case, ratios[case]["time_dense_over_sparse"],
                                      ratios[case]["peak_dense_over_sparse"],
                                      ratios[case]["max_coef_diff"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                   "rows": args.rows, "cols": args.cols, "density": args.density,
                   "cases": rows, "ratios": ratios}, f, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
