"""Wide tables on Dask (issue 18): n = 20,000 rows, p doubling from 1,000 columns.

For each p (``--features``, default 1,000 to 32,000 doubling) and each loss, a
Parquet table of ``--rows`` rows in ``--files`` files (AR(1)-correlated columns on
mixed scales, 20 informative, :func:`elasticnet_dist.datasets.make_wide_table`;
the logistic label a Bernoulli draw of the same predictor) is searched by
``ElasticNetCV`` with the stage's defaults (5 folds x 3 l1_ratios x 100 alphas,
1se rule, glmnet's devmax and fdev stops, early stopping) on an embedded Dask
cluster (2 worker processes; ``--engine local``: in this process), load included.
Each case runs in a fresh process, so that its peak resident memory (``VmHWM``,
:mod:`memory`) is the driver's for that case alone;
the Dask workers are other processes, and the peak of the largest one is sampled
every 0.5 s (``psutil``) and reported as well.

Prints a table (wall time, route, data passes, selected features, peak driver
RSS) and, per loss, the least-squares slope of log(time) and log(peak RSS)
against log(p) over the pass route's cases, and writes JSON.

    python benchmarks/bench_sweep.py [--rows N] [--features 1000,2000,...]
        [--losses squared,logistic] [--files F] [--engine dask|local] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from memory import status_gb  # noqa: E402


def write_case(rows, features, files, seed, folder):
    from elasticnet_dist.datasets import make_wide_table, write_parquet

    sq = make_wide_table(rows, features, n_informative=20, seed=seed)
    lg = make_wide_table(rows, features, n_informative=20, seed=seed, loss="logistic")
    write_parquet(sq, folder, n_files=files, extra_columns={"yb": lg.y})


class WorkerPeak:
    """The largest resident memory of any child process (the embedded cluster's
    workers), sampled every 0.5 s on a daemon thread."""

    def __init__(self):
        import psutil

        self.gb = 0.0
        self._me = psutil.Process()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        import psutil

        while True:
            try:
                sizes = [c.memory_info().rss / 1e9 for c in self._me.children(recursive=True)]
            except psutil.Error:
                sizes = []
            self.gb = max([self.gb, *sizes])
            time.sleep(0.5)


def run_case(path, loss, engine="dask"):
    """One search in this process; prints its JSON line."""
    from elasticnet_dist import ElasticNetCV
    from elasticnet_dist.params import PARAMS

    workers = WorkerPeak()
    label = "y" if loss == "squared" else "yb"
    t0 = time.perf_counter()
    est = ElasticNetCV(l1_ratio=list(PARAMS["l1_ratios"].stage), alphas=100, cv=5, loss=loss,
                       selection=PARAMS["selection"].stage, devmax=PARAMS["devmax"].stage,
                       fdev=PARAMS["fdev"].stage, max_iter=PARAMS["max_iter"].stage,
                       early_stop=PARAMS["early_stop"].stage,
                       engine=engine).fit(path, label=label, exclude=["yb" if label == "y"
                                                                       else "y"])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "route": est.route_, "passes": est.n_passes_,
                      "selected": int(np.count_nonzero(est.coef_)),
                      "timings": est.timings_,
                      "peak_rss_gb": status_gb("VmHWM"), "worker_peak_gb": workers.gb}))


def slope(xs, ys):
    """Least-squares slope of log(y) on log(x)."""
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--features", default="1000,2000,4000,8000,16000,32000")
    ap.add_argument("--losses", default="squared,logistic")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_sweep.json"))
    ap.add_argument("--engine", default="dask", choices=("dask", "local"))
    ap.add_argument("--case", nargs=3, metavar=("PATH", "LOSS", "ENGINE"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--write", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        return run_case(*args.case)
    if args.write:
        folder, *sizes = args.write
        return write_case(*map(int, sizes), folder)
    rows = []
    root = tempfile.mkdtemp(prefix="bench-sweep-")
    try:
        for p in (int(v) for v in args.features.split(",")):
            folder = os.path.join(root, "t%d" % p)
            t0 = time.perf_counter()
            # written by another process: this one stays small while the cases run
            subprocess.run([sys.executable, __file__, "--write", folder, str(args.rows), str(p),
                            str(args.files), str(args.seed)], check=True)
            written = time.perf_counter() - t0
            for loss in args.losses.split(","):
                done = subprocess.run([sys.executable, __file__, "--case", folder, loss,
                                       args.engine],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stderr[-3000:])
                    raise SystemExit("the case p=%d %s failed" % (p, loss))
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row.update(rows_=args.rows, features=p, loss=loss, engine=args.engine,
                           write_s=written)
                rows.append(row)
                print("n %6d  p %6d  %-8s %8.1f s  %-6s %4d passes %4d selected  peak driver "
                      "RSS %.2f GB, worker %.2f GB"
                      % (args.rows, p, loss, row["seconds"], row["route"], row["passes"],
                         row["selected"], row["peak_rss_gb"], row["worker_peak_gb"]),
                      flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    fits = {}
    for loss in args.losses.split(","):
        mine = [r for r in rows if r["loss"] == loss and r["route"] == "passes"]
        ps = [r["features"] for r in mine]
        fits[loss] = {"time_slope": slope(ps, [r["seconds"] for r in mine]),
                      "rss_slope": slope(ps, [r["peak_rss_gb"] for r in mine]),
                      "features": ps}
        print("%s, pass route over p = %s: time ~ p^%.2f, peak driver RSS ~ p^%.2f"
              % (loss, ps, fits[loss]["time_slope"], fits[loss]["rss_slope"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                   "rows": rows, "fits": fits}, f, indent=2, default=float)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
