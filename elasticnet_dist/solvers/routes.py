"""Which route a fit takes: the one-pass Gram route or one pass per step.

A quadratic loss has sufficient statistics: the moments and the p x p Gram
matrix (per fold, for cross-validation), read in one data pass, answer every
later pass on the driver. That pays while p is moderate (each block computes
n_b p^2 / 2 flops, the driver holds a few p x p matrices) and the memory is
there; otherwise, and for every other loss, each step of a solver costs a pass.
One function decides for single fits (:func:`choose_solver`), paths and
cross-validation (:func:`choose_route`).
"""
from __future__ import annotations

import logging

from ..losses import get_loss
from ..memory import available_memory
from ..params import PARAMS
from ..reduction import FAN_IN

log = logging.getLogger("elasticnet_dist")

#: Largest p for the one-pass route of paths and cross-validation: its driver holds
#: about 2K + 4 p x p matrices (:func:`gram_route_bytes`: 1.9 GB for K = 5 at
#: p = 4,096, the limit of Spark MLlib's normal-equation solver too) and each block
#: computes n_b p^2 / 2 flops.
GRAM_MAX_FEATURES = PARAMS["gram_max_features"].default
#: Largest p for which ``solver="auto"`` fits one alpha from the full Gram matrix.
#: Below it one pass of n p^2 / 2 flops replaces every later pass. Measured on
#: n = 100,000 in memory (benchmarks/bench_auto.py): gram/newton time 0.58 at
#: p = 100, 0.93 at 500, 0.73 at 1,000, 1.06 at 2,000 (422 selected) and 2.8 at
#: 2,000 with 189 selected; on a cluster every pass avoided counts for more.
FIT_GRAM_MAX_FEATURES = 1000


def gram_route_bytes(n_features, n_folds):
    """Memory of the one-pass route: on the driver about 2K + 4 p x p float64
    matrices (the K folds' Gram sums, their total, the centred Gram of the full
    data and of each training set, two temporaries); in one merge task of the
    pass FAN_IN + 1 stacks of K (the partial sums merged and their total).
    Returns ``(driver bytes, task bytes)``."""
    square = 8 * n_features ** 2
    return (2 * n_folds + 4) * square, (FAN_IN + 1) * n_folds * square


#: Share of a worker's memory limit a merge task may take (Dask pauses a worker at 80%).
TASK_SHARE = 0.6


def choose_route(loss, n_features, n_folds, gram_max_features, available=None,
                 task_limit=None):
    """``"gram"`` for a quadratic loss with at most ``gram_max_features`` features
    whose p x p statistics (``n_folds`` folds; 0: one fit or path) fit in the
    driver's ``available`` memory and in TASK_SHARE of a worker's ``task_limit``
    (bytes; None: unknown), else ``"passes"`` (with a log line saying why, if memory
    decided)."""
    if not get_loss(loss).quadratic or n_features > gram_max_features:
        return "passes"
    driver, task = gram_route_bytes(n_features, n_folds)
    short = []
    if available is not None and driver > available:
        short.append("%.2f GB on the driver (%.2f GB available)" % (driver / 1e9,
                                                                   available / 1e9))
    if task_limit is not None and task > TASK_SHARE * task_limit:
        short.append("%.2f GB in one merge task on a worker (memory limit %.2f GB)"
                     % (task / 1e9, task_limit / 1e9))
    if short:
        log.warning("the one-pass route (p = %d, %d folds) would need %s: using the "
                    "pass-per-step route instead (give the driver or the workers more "
                    "memory to keep it; search.gram_max_features below %d chooses the pass "
                    "route without this check)", n_features, n_folds, " and ".join(short),
                    n_features)
        return "passes"
    return "gram"


def choose_solver(loss, n_rows, n_features):
    """``solver="auto"`` for one fit: ``"gram"`` where :func:`choose_route` takes the
    one-pass route up to FIT_GRAM_MAX_FEATURES, else ``"newton"``."""
    route = choose_route(loss, n_features, 0, FIT_GRAM_MAX_FEATURES, available_memory())
    return "gram" if route == "gram" else "newton"
