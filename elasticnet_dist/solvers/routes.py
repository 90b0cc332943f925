"""Which route a fit takes: the one-pass Gram route or one pass per step, by cost.

A quadratic loss has sufficient statistics: the moments and the p x p Gram
matrix (per fold, for cross-validation), read in one data pass, answer every
later pass on the driver. That pays when rows dwarf columns; when they do not,
the p x p matrices cost more to build, centre and read than every pass over
the n x p data that they replace (riboflavin, 71 x 4,088: 8.8 s on the Gram
route, 2.9 s on the pass route). :func:`route_seconds` estimates both from the
workload (:class:`Workload`) with the constants below, measured on this
project's 2-core machines; :func:`choose_route` takes the cheaper one when its
matrices fit in memory, and logs why. One function decides for single fits
(:func:`choose_solver`), paths and cross-validation.

The model, with ``n`` rows, ``p`` features, ``K`` folds, ``P = L (K + 1)``
problems (one per l1_ratio and training set, 1 for a path), ``A`` alphas per
path, ``c`` cores, ``F`` = FLOPS_PER_CORE, ``T`` = SECONDS_PER_ELEMENT, ``R`` =
SECONDS_PER_READ, ``S`` = STEP_SECONDS, ``m = PASSES_PER_ALPHA A`` solver
steps per path and ``h = min(p, n)`` features in play (a lasso selects at most
``n``)::

    gram   = n p^2 / (2 F c) + (2 K + 4) p^2 T  +  m P (S + p h R / 2)
             one pass: every row into its fold's Gram; on the driver the K + 1
             training sets' centred Grams; then every step reads the rows of its
             support (h / 2 on average over a path) of a Gram
    passes = m (overhead + P (4 n p / (F c) + S + S'))  +  P n h^2 / (2 F c)
             every step a pass (shared by the P problems): two n x p products
             and the kernel's own work (S' = KERNEL_SECONDS) per problem; and
             once per problem the Gram columns of the features its paths touch
             (squared loss: fetched once, then cached; a loss whose curvature
             moves instead adds a working set's block, n WORKING_SET^2 / (2 F c),
             to every problem's share of every pass)

``overhead`` is the engine's fixed cost per pass (``Source.pass_overhead``).

Sparse rows (CSR blocks, a share ``d`` of the ``n p`` values stored) replace each
product over the rows: a pass's ``4 n p / F`` by ``4 d n p / F_s`` (``F_s`` =
SPARSE_FLOPS_PER_CORE: scipy's sparse products, not BLAS), the Gram matrix's
``n p^2 / 2F`` and the Gram columns' and Hessian blocks' ``n h^2 / 2F`` by
``n (d p)^2 / G`` and ``n (d h)^2 / G`` (``G`` = SPARSE_PRODUCTS_PER_SECOND: the
products of each row's non-zeros), plus ``p^2 T`` for every chunk's dense p x p sum;
and every problem's share of a pass gains its Hessian block's column gathers, ``d n p
V`` (V = SPARSE_GATHER_SECONDS_PER_VALUE: scipy scans the stored values to gather).

On a cluster the pass route pays that overhead in every pass (Dask about 30 ms,
Spark about 0.15 s: 200 passes of a 5-fold, 3-l1_ratio grid cost 6 to 30 s
whatever the table). A table small enough is instead fetched into this process
once (:func:`gather_if_cheaper`: the same blocks, kernels and merge tree) when
the pass route's estimate here, plus the transfer at GATHER_BYTES_PER_SECOND, is
below its estimate on the engine. Where a pass's arithmetic outweighs the driver's
model solves, the pass route's paths solve each next point ahead
(:func:`solves_ahead`: fewer passes, each with a second point per problem); the
route is priced without that saving, a cautious estimate of the pass route.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..losses import get_loss
from ..memory import available_memory
from ..params import PARAMS
from ..passes import GRAM_ROWS_PER_FEATURE
from ..reduction import FAN_IN

log = logging.getLogger("elasticnet_dist")

#: Largest p for the one-pass route of paths and cross-validation, whatever the
#: cost model says: its driver holds about 2K + 4 p x p matrices
#: (:func:`gram_route_bytes`: 1.9 GB for K = 5 at p = 4,096, the limit of Spark
#: MLlib's normal-equation solver too).
GRAM_MAX_FEATURES = PARAMS["gram_max_features"].default
#: Largest p for which ``solver="auto"`` fits one alpha from the full Gram matrix.
#: Below it one pass of n p^2 / 2 flops replaces every later pass. Measured on
#: n = 100,000 in memory (benchmarks/bench_auto.py): gram/newton time 0.58 at
#: p = 100, 0.93 at 500, 0.73 at 1,000, 1.06 at 2,000 (422 selected) and 2.8 at
#: 2,000 with 189 selected; on a cluster every pass avoided counts for more.
FIT_GRAM_MAX_FEATURES = 1000

#: Dense matrix products per core (dgemm/dsyrk on blocks of thousands of rows:
#: 12 GF/s on one core, 25 on two, 46 GF/s for 18 points' gradients on two).
FLOPS_PER_CORE = 1.2e10
#: Driver (or worker) time per element of a p x p matrix written once: 13 ns
#: measured for X'X with 71 rows at p = 4,088 (bound by memory, first touch of
#: fresh pages), 23 ns per element for centring the CV route's Gram matrices.
SECONDS_PER_ELEMENT = 1.5e-8
#: Passes per alpha of a path on the pass route: 0.9 to 2.0 measured (88 to 197
#: passes for 100 alphas on the real wide tables, 5 folds x 3 l1_ratios).
PASSES_PER_ALPHA = 2.0
#: Driver time per problem per pass (duality gap, working set, quadratic model):
#: 0.34 ms measured on riboflavin, 0.43 ms on ALLAML (logistic), 0.38 ms on
#: Prostate_GE (0.5 and 0.7 ms before the path points were made cheaper).
STEP_SECONDS = 4e-4
#: A problem's share of a pass's fixed work in the kernel (its sums, its Hessian
#: block's gathers, the merge): 0.2 ms measured on ALLAML (176 passes, 18 problems,
#: 0.66 s in the kernel), half that without a Hessian.
KERNEL_SECONDS = 1e-4
#: Reading one element of a p x p matrix already in memory (about 1 GB/s of
#: gathered rows).
SECONDS_PER_READ = 1e-9
#: Sparse products per core (scipy's CSR kernels on a block with a share of 1% stored):
#: 3.1e9 per second on two cores for a pass of 18 points at 100,000 x 5,000, 0.4e9 for
#: one point (bound by the pass's fixed costs); measured on a loaded machine.
SPARSE_FLOPS_PER_CORE = 1.5e9
#: Products of pairs of a row's non-zeros per second in a sparse X'X (CSR times CSC, then
#: the p x p result made dense): 5e7 measured at 100,000 x 5,000, 1% stored.
SPARSE_PRODUCTS_PER_SECOND = 5e7
#: A sparse Hessian block's column gathers and products per stored value of the block
#: (scipy scans every stored value to gather columns): 12 ms per block measured over
#: 6,692 blocks of folds of 16,000 x 4,000 at 1% (6.4e5 values), 1.9e-8 s per value.
SPARSE_GATHER_SECONDS_PER_VALUE = 2e-8
#: Typical working set of a step (the Newton solver's first size) for the Hessian
#: blocks a loss that is not quadratic computes in every pass.
WORKING_SET = 64
#: A single fit's passes (Newton): 5 to 15 seen, as many as 4 path points.
FIT_ALPHAS = 4


@dataclass(frozen=True)
class Workload:
    """What a fit asks of the data, for :func:`route_seconds`: rows, features, folds
    (0: no cross-validation), problems solved side by side (``L (K + 1)`` in
    cross-validation), alphas per path, the source's fixed cost per pass (s) and
    the cores its passes run on."""

    n_rows: int
    n_features: int
    n_folds: int = 0
    n_problems: int = 1
    n_alphas: int = 100
    pass_overhead: float = 0.0
    cores: int = 1
    hessian_per_pass: bool = False  # a loss whose curvature moves: blocks in every pass
    #: Sparse rows: the share of the n p values stored (None: dense blocks).
    density: float = None


def _row_products(work: Workload, side):
    """Seconds of ``X_S' diag(h) X_S`` over all rows for ``side`` = |S| features:
    ``n side^2 / 2`` multiply-adds in BLAS, or each row's stored pairs when sparse."""
    n, cores = float(work.n_rows), max(1, work.cores)
    if work.density is None:
        return n * side * side / (2 * FLOPS_PER_CORE * cores)
    return n * (work.density * side) ** 2 / (SPARSE_PRODUCTS_PER_SECOND * cores)


def point_seconds(work: Workload, cores=1):
    """A point's two products with the rows in a pass (``4 n p`` multiply-adds, or
    ``4 nnz`` sparse ones) on ``cores`` cores."""
    n, p = float(work.n_rows), float(work.n_features)
    if work.density is None:
        return 4 * n * p / (FLOPS_PER_CORE * cores)
    return 4 * work.density * n * p / (SPARSE_FLOPS_PER_CORE * cores)


def route_seconds(work: Workload):
    """``(gram, passes)``: the estimated seconds of each route (see the module doc)."""
    n, p = float(work.n_rows), float(work.n_features)
    problems, h = work.n_problems, min(p, n)
    steps = PASSES_PER_ALPHA * work.n_alphas
    matrices = 2 * work.n_folds + 4
    if work.density is not None:  # every chunk's p x p sum is dense (GRAM_ROWS_PER_FEATURE)
        matrices += n / (GRAM_ROWS_PER_FEATURE * p) + 1
    gram = (_row_products(work, p) + matrices * p * p * SECONDS_PER_ELEMENT
            + steps * problems * (STEP_SECONDS + p * h / 2 * SECONDS_PER_READ))
    per_problem = point_seconds(work, max(1, work.cores)) + STEP_SECONDS + KERNEL_SECONDS
    if work.density is not None:  # a Hessian block's sparse column gathers, most passes
        per_problem += work.density * n * p * SPARSE_GATHER_SECONDS_PER_VALUE
    if work.hessian_per_pass:  # the working set's block, again in every pass
        per_problem += _row_products(work, min(p, n, WORKING_SET))
    passes = steps * (work.pass_overhead + problems * per_problem)
    if not work.hessian_per_pass:  # the Gram columns of every feature touched, once
        passes += problems * _row_products(work, h)
    return gram, passes


#: Driver time per element of a model's h x h matrix for one solve (conjugate
#: gradients and the polish read it some ten times): the second model per step that
#: solving ahead adds cost about 0.2 s per problem at 20,000 x 8,000.
MODEL_SECONDS_PER_ELEMENT = 1e-8


def solves_ahead(work: Workload, quiet=False):
    """Whether the pass route's paths solve each next point ahead
    (:class:`~.newton.Ahead`): where a point's arithmetic in a pass, ``4 n p / F``
    on one core, exceeds the second model solve per step it adds on the driver,
    ``S + h^2 M`` (``h = min(n, p)`` the largest model, ``M`` =
    MODEL_SECONDS_PER_ELEMENT). The rule reads the table, not the engine, so that
    every engine takes the same steps (and gets the same bits).

    Measured (ahead / plain), 5 folds x 3 l1_ratios x 100 alphas: 100,000 x 500
    squared, in this process 66 / 107 passes, 50.7 / 77.6 s, on Dask 76 / 105
    passes, 70.9 / 92.7 s; 100,000 x 200 logistic (1 l1_ratio) in this process 148
    / 184 passes, 40.0 / 46.3 s. Against it: 20,000 x 8,000 squared on Dask, 97 /
    136 passes but 822 / 647 s (models of thousands of features); the five real
    wide tables, 6-48% fewer passes but as long or longer (riboflavin 53 / 102
    passes, 2.8-3.5 / 2.2-3.6 s; BASEHOCK 252 / 268 passes, 146 / 73 s). Logs the
    choice (unless ``quiet``)."""
    n, p = float(work.n_rows), float(work.n_features)
    point = point_seconds(work)
    model = STEP_SECONDS + min(n, p) ** 2 * MODEL_SECONDS_PER_ELEMENT
    ahead = point >= model
    _say(quiet, "%s: a point's pass arithmetic %.2g s against %.2g s for a second model "
         "per step", "solving each next path point ahead" if ahead
         else "not solving path points ahead", point, model)
    return ahead


#: Fetching cached blocks into the driver (Dask's gather, Spark's collect of the
#: spilled blocks): bytes per second, a cautious figure (ALLAML's 4.1 MB came from
#: two Dask workers in 0.01 s; larger transfers were not timed).
GATHER_BYTES_PER_SECOND = 2e8
#: Largest table gathered into the driver, and at most this share of its available memory.
GATHER_MAX_BYTES = 512 * 2**20
GATHER_MEMORY_SHARE = 0.25


@dataclass(frozen=True)
class Gathering:
    """The pass route with a source's rows fetched into this process: the workload
    there (one core, this process's cost per pass) and the seconds of the transfer."""

    work: Workload
    transfer: float

    def seconds(self):
        return route_seconds(self.work)[1] + self.transfer


def gathering(source, work: Workload, available=None):
    """The :class:`Gathering` of ``source`` for ``work``, or None when its rows cannot be
    fetched here or take more than GATHER_MAX_BYTES or GATHER_MEMORY_SHARE of the
    ``available`` memory."""
    n_bytes = source.gather_bytes
    if n_bytes is None or n_bytes > GATHER_MAX_BYTES \
            or (available is not None and n_bytes > GATHER_MEMORY_SHARE * available):
        return None
    # one core: this process runs its blocks one after another, and BLAS threads do
    # little for a block's products with a few points (100,000 x 500 gathered from
    # two Dask workers: its CV search took 1.5 times as long)
    here = replace(work, pass_overhead=source.gathered_overhead, cores=1)
    return Gathering(here, n_bytes / GATHER_BYTES_PER_SECOND)


def gather_if_cheaper(source, work: Workload, plan):
    """``source.gathered()`` (its rows fetched into this process) when its
    :class:`Gathering` ``plan`` is estimated cheaper than the pass route on the engine;
    else ``source``. Logs what it did and why."""
    if plan is None:
        return source
    here, there = plan.seconds(), route_seconds(work)[1]
    if here >= there:
        return source
    t0 = time.perf_counter()
    gathered = source.gathered()
    log.info("gathered the table (%.1f MB) into this process in %.2f s: its passes run here "
             "(estimated %.2g s against %.2g s on the engine)", source.gather_bytes / 1e6,
             time.perf_counter() - t0, here, there)
    return gathered


class RoutePlan(NamedTuple):
    """How a path or a search runs: ``route`` (``"gram"`` or ``"passes"``), the
    ``source`` its passes run on, and whether its paths solve points ``ahead``."""

    route: str
    source: object
    ahead: bool


def route_for(source, loss, work: Workload, gram_max_features):
    """The :class:`RoutePlan` of a path or a search over ``source``: the route of
    :func:`choose_route` (the pass route priced here too when the rows can be
    gathered), the source its passes run on (gathered when that pays) and, on the
    pass route, :func:`solves_ahead`."""
    available = available_memory()
    plan = gathering(source, work, available)
    route = choose_route(loss, work, gram_max_features, available,
                         source.task_memory_limit(), gather=plan)
    if route != "passes":
        return RoutePlan(route, source, False)
    return RoutePlan(route, gather_if_cheaper(source, work, plan), solves_ahead(work))


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


def choose_route(loss, work: Workload, gram_max_features, available=None, task_limit=None,
                 quiet=False, gather=None):
    """``"gram"`` for a quadratic loss with at most ``gram_max_features`` features
    when :func:`route_seconds` finds it cheaper and its p x p statistics (``n_folds``
    folds; 0: one fit or path) fit in the driver's ``available`` memory and in
    TASK_SHARE of a worker's ``task_limit`` (bytes; None: unknown); else
    ``"passes"``. ``gather``: the :class:`Gathering` of the source, if it has one
    (the pass route then costs the cheaper of here and there). Logs the choice and
    why (unless ``quiet``), a warning if memory decided."""
    p, folds = work.n_features, work.n_folds
    if not get_loss(loss).quadratic:
        return "passes"
    if p > gram_max_features:
        _say(quiet, "pass route: %d features, more than gram_max_features (%d)", p,
             gram_max_features)
        return "passes"
    gram, passes = route_seconds(work)
    if gather is not None:
        passes = min(passes, gather.seconds())
    if passes < gram:
        _say(quiet, "pass route: %d rows x %d features, estimated %.2g s against %.2g s for "
             "the one-pass Gram route (p x p statistics cost more than passes over n x p "
             "rows)", work.n_rows, p, passes, gram)
        return "passes"
    driver, task = gram_route_bytes(p, folds)
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
                    "route without this check)", p, folds, " and ".join(short), p)
        return "passes"
    _say(quiet, "one-pass Gram route: %d rows x %d features, estimated %.2g s against %.2g s "
         "for the pass route", work.n_rows, p, gram, passes)
    return "gram"


def _say(quiet, message, *args):
    if not quiet:
        log.info(message, *args)


def source_workload(source, loss, n_folds=0, n_problems=1, n_alphas=100):
    """The :class:`Workload` of a fit of ``loss`` over ``source``."""
    return Workload(source.n_rows, source.n_features, n_folds, n_problems, n_alphas,
                    source.pass_overhead, source.cores,
                    hessian_per_pass=not get_loss(loss).quadratic, density=source.density)


def choose_solver(loss, source):
    """``solver="auto"`` for one fit over ``source``: ``"gram"`` where
    :func:`choose_route` takes the one-pass route up to FIT_GRAM_MAX_FEATURES (a
    single fit's few passes counted as FIT_ALPHAS path points), else ``"newton"``."""
    route = choose_route(loss, source_workload(source, loss, n_alphas=FIT_ALPHAS),
                         FIT_GRAM_MAX_FEATURES, available_memory(), quiet=True)
    return "gram" if route == "gram" else "newton"
