"""R glmnet as a peer of the benchmarks: whether it is installed, and one run of an R
script on in-memory data handed over as raw little-endian files (``X.bin`` row-major
float64, ``y.bin`` float64, ``fold.bin`` int32 fold numbers from 1)."""
from __future__ import annotations

import os
import shutil
import subprocess


def has_glmnet():
    """Whether ``Rscript`` runs and has the glmnet package."""
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(["Rscript", "-e", "suppressMessages(library(glmnet))"],
                          capture_output=True)
    return done.returncode == 0


def run_r(script, workdir, X, y, fold, *args):
    """Write the data and ``script`` into ``workdir`` and run it with the arguments
    ``workdir n p *args``; its standard output."""
    X.astype("<f8").tofile(os.path.join(workdir, "X.bin"))
    y.astype("<f8").tofile(os.path.join(workdir, "y.bin"))
    (fold + 1).astype("<i4").tofile(os.path.join(workdir, "fold.bin"))
    path = os.path.join(workdir, "script.R")
    with open(path, "w") as f:
        f.write(script)
    return subprocess.run(["Rscript", path, workdir, str(X.shape[0]), str(X.shape[1]),
                           *map(str, args)], capture_output=True, text=True, check=True).stdout
