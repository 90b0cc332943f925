"""The pipeline stage as a scheduler runs it: ``elasticnet-dist select`` end to end.

On the engines benchmark's table (n x p in ``--files`` Parquet files, label
``y``; its logistic label ``yb`` excluded), each command runs as a fresh
process, so every figure includes Python's start, the imports and starting
(or reaching) the engine:

- ``select`` with the default configuration (5 folds x 3 l1_ratios x 100
  alphas, rule 1se) on the embedded Dask LocalCluster, on Spark ``local[2]``
  and on the local engine;
- ``apply`` (the reduced table) and ``validate --input`` after the Dask run;
- the single-pass bound of the squared loss (pyarrow read into NumPy + ``X'X``).

Reruns on each engine must give the same manifest apart from ``created_at``
and timings; the script checks it (``--reruns``). Prints a table, writes JSON.

    python benchmarks/bench_stage.py [--rows N] [--features P] [--files F]
        [--engines dask,spark,local] [--reruns K] [--out FILE]
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
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_engines import make_table, numpy_baselines, table_arguments  # noqa: E402

from elasticnet_dist.manifest import without_volatile  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_FLAGS = {"dask": ["--engine", "dask"], "spark": ["--master", "local[2]"],
                "local": ["--engine", "local"]}


def command(*args):
    """Run ``elasticnet-dist ARGS`` in a new process; (seconds, completed process)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "elasticnet_dist.cli", *args,
                          "--progress", "never"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit("elasticnet-dist %s failed (exit %d):\n%s"
                         % (" ".join(args), out.returncode, out.stderr[-3000:]))
    return seconds, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    table_arguments(ap)
    ap.add_argument("--engines", default="dask,spark,local")
    ap.add_argument("--reruns", type=int, default=1, help="extra runs per engine, compared")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_stage.json"))
    args = ap.parse_args(argv)

    path, X, ys, names = make_table(args.rows, args.features, args.files, args.seed,
                                    os.path.join(HERE, "data"))
    base = numpy_baselines(path, names, X, ys["squared"])
    del X, ys
    bound = base["read_s"] + base["gram_s"]
    print("single-pass bound: read %.2f s + Gram %.2f s = %.2f s"
          % (base["read_s"], base["gram_s"], bound))

    work = tempfile.mkdtemp(prefix="bench-stage-")
    rows, extra = [], {}
    try:
        for engine in args.engines.split(","):
            out_dir = os.path.join(work, engine)
            runs = []
            for _ in range(1 + args.reruns):
                seconds, _ = command("select", "--input", path, "--label", "y", "--exclude",
                                     "yb", "--output", out_dir, *ENGINE_FLAGS[engine])
                with open(os.path.join(out_dir, "manifest.json")) as f:
                    runs.append((seconds, json.load(f)))
            seconds, doc = runs[0]
            same = all(without_volatile(d) == without_volatile(doc) for _, d in runs[1:])
            t = doc["solver"]["timings"]
            rows.append(dict(engine=engine, wall_s=seconds,
                             rerun_wall_s=[s for s, _ in runs[1:]],
                             engine_start_s=t["engine_start"], load_s=t["load"],
                             statistics_s=t["statistics"], paths_s=t["paths"],
                             passes=doc["solver"]["data_passes"],
                             selected=len(doc["selected"]), alpha=doc["penalty"]["alpha"],
                             l1_ratio=doc["penalty"]["l1_ratio"],
                             manifest_bytes=os.path.getsize(os.path.join(out_dir,
                                                                         "manifest.json")),
                             reruns_identical=same))
            if engine == "dask":
                manifest = os.path.join(out_dir, "manifest.json")
                extra["apply_s"], _ = command("apply", "--manifest", manifest, "--input", path,
                                              "--output", os.path.join(work, "reduced"))
                extra["validate_s"], _ = command("validate", manifest, "--input",
                                                 os.path.join(work, "reduced"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\n%-6s %8s %8s %7s %8s %8s %7s %9s %9s %8s"
          % ("engine", "wall s", "start s", "load s", "stats s", "paths s", "passes",
             "selected", "identical", "/ bound"))
    for r in rows:
        print("%-6s %8.2f %8.2f %7.2f %8.2f %8.2f %7d %9d %9s %8.2f"
              % (r["engine"], r["wall_s"], r["engine_start_s"], r["load_s"], r["statistics_s"],
                 r["paths_s"], r["passes"], r["selected"], r["reruns_identical"],
                 r["wall_s"] / bound))
    if extra:
        print("\napply (reduced table, dask): %.2f s; validate --input: %.2f s"
              % (extra["apply_s"], extra["validate_s"]))
    result = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
              "table": {"rows": args.rows, "features": args.features, "files": args.files},
              "bound_s": bound, "numpy": base, "select": rows, **extra}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % args.out)
    if not all(r["reruns_identical"] for r in rows):
        raise SystemExit("reruns gave different manifests")


if __name__ == "__main__":
    main()
