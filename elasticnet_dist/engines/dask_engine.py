"""The Dask engine: blocks kept in worker memory as futures, one task per block per pass.

Loading maps :meth:`BlockDecoder.load` over the pieces (``client.map``); the
resulting futures *are* the cache, held in the workers' memory for the life
of the engine. If a worker dies, Dask recomputes its blocks from the pieces
(their lineage). A pass submits one task per worker thread over the blocks
that worker holds (asked of the scheduler each pass, so it follows blocks
that moved), with the request inline (a few kB); each task returns its
blocks' partial sums one by one and the client merges them with
:func:`~elasticnet_dist.reduction.tree_merge` in piece order, so the answer does
not depend on which worker ran what.
"""
from __future__ import annotations

import contextlib
import logging
import os

import pyarrow as pa
from dask.sizeof import sizeof

from ..io.blocks import Block
from ..io.table import dask_partition_source
from ..reduction import FAN_IN, group_stats_of, merge_group, merge_stats, tree_merge
from ..errors import EngineError, MemoryBudgetError
from .base import BlockEngine, check_reachable, gigabytes
from .dask_watch import PAUSED_SECONDS, WATCH_SECONDS, Stranded, Watch

log = logging.getLogger("elasticnet_dist")


@sizeof.register(Block)
def _sizeof_block(block):
    """A block's real size, so that Dask's memory accounting (and spilling) sees it
    (with the rows a statistics store's stand-in decoded, if it did)."""
    return block.nbytes + (0 if block.origin is None else block.origin.nbytes)


#: Times a pass's stranded tasks are submitted again before the pass gives up.
MAX_RESUBMITS = 3


def contiguous_placement(n_pieces, workers, fan_in=FAN_IN):
    """The worker for each piece: runs of consecutive pieces per worker, as equal
    as they can be (``None`` for every piece when no worker is known).

    The runs are whole groups of ``fan_in`` pieces (the merge tree's level-1
    nodes) when that leaves no worker more pieces than equal runs do: a worker
    holding a whole group sums it in one task, and a statistics store answers
    for the group with one file (17 pieces on 2 workers: 8 and 9, where equal
    runs of 9 and 8 split the second group)."""
    if not workers:
        return [None] * n_pieces
    n_workers, n_groups = len(workers), -(-n_pieces // fan_in)
    equal = [workers[i * n_workers // n_pieces] for i in range(n_pieces)]
    if n_groups < n_workers:
        return equal
    grouped = [workers[next(j for j in range(n_workers)
                            if i // fan_in < n_groups * (j + 1) // n_workers)]
               for i in range(n_pieces)]
    longest = lambda placement: max(placement.count(w) for w in workers)  # noqa: E731
    return grouped if longest(grouped) <= longest(equal) else equal


def _preferring(address):
    """``submit`` options for a task that should run on ``address`` if it can
    (none when no worker is known, e.g. while every worker restarts)."""
    if address is None:
        return {}
    return {"workers": [address], "allow_other_workers": True}


def _load_piece(piece, decoder):
    return decoder.load(piece)


def _decode_frame(frame, index, decoder):
    return decoder.decode(pa.Table.from_pandas(frame, preserve_index=False),
                          "partition %d of the Dask DataFrame" % index,
                          source=dask_partition_source(index))


def _summary(block):
    return block.summary


def _piece_summary(piece, decoder):
    return decoder.load(piece).summary


def _piece_stats(piece, decoder, kernel):
    return kernel(decoder.load(piece))


def _stats(block, kernel):
    return kernel(block)


def _leaf_stats(blocks, kernel):
    """One leaf node of the merge tree (a group of FAN_IN consecutive blocks held
    by one worker): each block's statistics added to the node as they are made,
    or the node from a statistics store (:meth:`~..passes.BlockKernel.group`)."""
    return group_stats_of(kernel, blocks)


def _fold_in(total, part):
    """One step of :func:`merge_group`'s left fold: ``total + part`` in a fresh copy
    (a task's inputs are the cluster's, not its own to add into)."""
    return merge_group([total, part])


def _stats_of_blocks(blocks, indices, kernel):
    """The statistics of several blocks held by one worker, each kept apart."""
    return [(i, kernel(block)) for i, block in zip(indices, blocks, strict=True)]


#: Why an embedded cluster's workers fail to start, most of the time.
NO_MAIN_GUARD = (
    "the embedded Dask cluster could not start its worker processes (%s). Worker "
    "processes import the script that started them: if a script calls "
    "ElasticNet(engine=\"dask\").fit(...) or the stage at its top level, put that code "
    "under `if __name__ == \"__main__\":`; or use engine=\"local\" on one machine")


#: Dask's setting of the environment its nannies give worker processes.
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"
#: Dask's default glibc trim threshold for its workers (bytes).
DASK_TRIM_THRESHOLD = 65536


@contextlib.contextmanager
def _glibc_allocation():
    """Start worker processes without Dask's default ``MALLOC_TRIM_THRESHOLD_``
    (:func:`_without_dask_trim`): left out of the nannies' environment setting,
    and out of this process's environment while they spawn (a cluster Dask
    started before in this process has put it there; children inherit it)."""
    import dask

    inherited = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if inherited == str(DASK_TRIM_THRESHOLD):
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    try:
        with dask.config.set({PRE_SPAWN: _without_dask_trim(dask.config.get(PRE_SPAWN, {}))}):
            yield
    finally:
        if inherited is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = inherited


def _without_dask_trim(environ):
    """The workers' environment without Dask's default ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to 64 KiB so that freed memory goes back to the system soon; but
    any fixed threshold also fixes glibc's mmap threshold at 128 KiB, so every
    temporary above it (a pass's chunk products, a path's gathered Gram columns)
    is mapped afresh and its pages faulted in each time. Measured on 2 workers:
    the logistic search of 20,000 x 300 (5 folds x 3 l1_ratios x 50 alphas, 108
    passes) 31.6-33.7 s with it, 27.5-29.0 s without; one path of 20,000 x 2,000
    (100 alphas) 0.43-0.49 s with it, 0.38-0.41 s without, 0.38 s in the driver;
    the workers' peaks the same (2.2-2.7 GB), 0.15 GB more kept after the fit.
    A threshold the user configured (another value) is kept."""
    environ = dict(environ)
    if environ.get("MALLOC_TRIM_THRESHOLD_") == DASK_TRIM_THRESHOLD:
        del environ["MALLOC_TRIM_THRESHOLD_"]
    return environ


def _local_cluster(LocalCluster, n_workers, memory_limit):
    """An embedded ``LocalCluster`` on 127.0.0.1: worker processes of one thread, no
    dashboard (its HTTP routes on a free loopback port, so an occupied 8787 makes no
    noise), and workers that log only critical lines (a failed task reaches the
    user as one message naming the file, not as a worker's traceback on stderr;
    ``--log-level debug`` keeps Dask's usual warnings)."""
    import logging as _logging

    from ..errors import EngineError

    verbose = _logging.getLogger("elasticnet_dist").isEnabledFor(_logging.DEBUG)
    try:
        with _glibc_allocation():
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                host="127.0.0.1", dashboard_address=None,
                                scheduler_kwargs={"dashboard": False,
                                                  "dashboard_address": "127.0.0.1:0"},
                                memory_limit=memory_limit,
                                silence_logs=_logging.WARNING if verbose else _logging.CRITICAL)
    except RuntimeError as exc:
        if "failed to start" in str(exc) or "bootstrapping" in str(exc):
            raise EngineError(NO_MAIN_GUARD % ("%s: %s" % (type(exc).__name__, exc))) from exc
        raise


class DaskEngine(BlockEngine):
    """Passes on a Dask cluster.

    Parameters
    ----------
    cluster : None, str, distributed.Client or a cluster object
        None starts a ``distributed.LocalCluster`` of worker processes on
        127.0.0.1 (closed with the engine); a string is a scheduler address
        (``tcp://host:8786``); a Client is used as it is.
    n_workers : int, optional. Workers of the embedded LocalCluster (default:
        one per core, one thread each: NumPy's BLAS threads then do not compete).
    timeout : float, optional. Seconds to wait for a scheduler address
        (default: Dask's ``distributed.comm.timeouts.connect``).
    cache : {"auto", "memory", "none"}, default "auto". Keep the decoded blocks in
        the workers' memory (``memory``; stops before loading if they exceed half
        the workers' memory limits), read the Parquet pieces again in every pass
        (``none``), or cache when they fit (``auto``).
    paused_timeout : float, default 30. Seconds every worker (or every worker
        holding the pass's tasks) may stay paused at its memory limit while a pass
        waits, before the pass stops with a
        :class:`~elasticnet_dist.errors.MemoryBudgetError`.

    A pass whose tasks Dask strands (every worker they were placed on gone at
    once; see :mod:`.dask_watch`) is submitted again, with the blocks placed
    afresh on the workers there are, up to MAX_RESUBMITS times.
    """

    name = "dask"
    #: About 30 ms per pass on a LocalCluster (benchmarks/README.md), more on a network.
    pass_overhead = 0.03
    frame_kind = "dask"

    def __init__(self, cluster=None, n_workers=None, memory_limit="auto", timeout=None,
                 cache="auto", paused_timeout=PAUSED_SECONDS):
        super().__init__(cache)
        self.paused_timeout = float(paused_timeout)
        from distributed import Client, LocalCluster

        self._owned = []
        if cluster is None:
            local = _local_cluster(LocalCluster, n_workers or os.cpu_count() or 1,
                                   memory_limit)
            self.client = Client(local)
            self._owned = [self.client, local]
        elif isinstance(cluster, Client):
            self.client = cluster
        else:  # a scheduler address or a cluster object
            self.client = Client(cluster, timeout=timeout) if timeout else Client(cluster)
            self._owned = [self.client]
        self._blocks = []
        self._pieces, self._decoder = [], None  # streaming passes read these again
        self._threads = {}

    def n_workers(self):
        return len(self.client.scheduler_info().get("workers", {}))

    def cores(self):
        workers = self.client.scheduler_info().get("workers", {}).values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

    def gather_bytes(self):
        return None if self.streaming or not self._blocks else self.bytes_cached

    def gather_blocks(self):
        return self._resubmitting(lambda: self.client.gather(self._blocks))

    def _load(self, pieces, decoder):
        check_reachable(pieces, self.name)
        if pieces and not hasattr(pieces[0], "path"):  # in-memory slices: ship them once
            # under keys of their own: content-hashed keys are shared with an earlier
            # scatter of the same slices (a stratified search loads its table twice), and
            # the release of that one's futures could then reach the scheduler after
            # this scatter and drop the data under the new blocks' tasks ("lost
            # dependencies", seen once in CI in tests/test_sparse.py)
            pieces = self.client.scatter(pieces, hash=False)
            self._blocks = self.client.map(_load_piece, pieces, decoder=decoder, pure=False)
            return self._summaries()
        # Consecutive pieces on the same worker (a preference: another worker may load
        # a block if its worker is gone): the merge tree of a Gram pass sums groups of
        # consecutive blocks, which then meet where they are. Interleaved placement
        # moved half of every group's p x p sums between workers (100,000 x 2,000,
        # 16 blocks on 2 workers, 5 folds: the CV statistics took 11.6 s, now 9.3 s).
        self._pieces, self._decoder = pieces, decoder  # to place them again if stranded
        self._blocks = self._placed(_load_piece, pieces, decoder)
        return self._summaries()

    def _load_streaming(self, pieces, decoder):
        """Summaries only: each worker decodes its pieces and drops them."""
        check_reachable(pieces, self.name)
        self._pieces, self._decoder, self._blocks = pieces, decoder, []
        return self._resubmitting(
            lambda: self._gather(self._placed(_piece_summary, pieces, decoder)))

    def _stream_pass(self, kernel, hint):
        """Every piece decoded again where it was placed, its sums merged up the tree."""
        return self._resubmitting(lambda: self._merge_up(
            self._placed(_piece_stats, self._pieces, self._decoder, kernel=kernel)))

    def _resubmitting(self, operation):
        """``operation()``, run again (with cached blocks placed afresh) when Dask
        strands its tasks: every worker they were placed on left at once."""
        for attempt in range(1, MAX_RESUBMITS + 2):
            try:
                return operation()
            except Stranded as stranded:
                self.client.cancel(stranded.futures)
                if attempt > MAX_RESUBMITS or (self._blocks and not self._pieces):
                    raise EngineError(
                        "Dask left %d tasks without a worker after every worker they were "
                        "placed on left the cluster (%s)" % (
                            len(stranded.futures),
                            "%d times" % attempt if attempt > MAX_RESUBMITS else
                            "the table given in memory was lost with them")) from None
                log.warning("%d tasks were stranded: every Dask worker they were placed on "
                            "left at once, and Dask does not give such tasks to the workers "
                            "that joined since (dask/distributed#7346); submitted again on "
                            "the %d workers there are now (attempt %d of %d)",
                            len(stranded.futures), self.n_workers(), attempt, MAX_RESUBMITS)
                if self._blocks:
                    self._blocks = self._placed(_load_piece, self._pieces, self._decoder)

    def _placed(self, task, pieces, decoder, **kwargs):
        placement = contiguous_placement(len(pieces), self._worker_addresses())
        return [self.client.submit(task, piece, decoder, **kwargs, **_preferring(addr),
                                   pure=False)
                for piece, addr in zip(pieces, placement, strict=True)]

    def _gather(self, futures, upstream=()):
        """``client.gather(futures)``, watching the cluster while it waits (see
        :mod:`.dask_watch`): workers paused at their memory limit for
        ``paused_timeout`` stop the pass with the sizes and the settings to change;
        stranded tasks raise :class:`Stranded` for :meth:`_resubmitting`.
        ``upstream``: the futures these are computed from (the blocks always are)."""
        from distributed import KilledWorker, wait

        watch = Watch(self.client, futures, [*upstream, *self._blocks], self.paused_timeout)
        while True:
            try:
                wait(futures, timeout=WATCH_SECONDS)
                return self.client.gather(futures)
            except KilledWorker as exc:
                limit = self.worker_memory_limit()
                raise EngineError(
                    "Dask workers died again and again running one task (%s); the usual "
                    "cause is the workers' memory limit (%s each): a pass holds the cached "
                    "blocks and, in cross-validation, up to %d partial sums of K p x p "
                    "matrices per merge; set engine.cache: none, input.dtype: float32, or "
                    "give the workers more memory" % (
                        getattr(exc, "task", "?"),
                        "unlimited" if limit is None else gigabytes(limit),
                        FAN_IN + 1)) from exc
            except TimeoutError:
                verdict = watch.look()
                if verdict == "stranded":
                    raise Stranded(watch.futures) from None
                if verdict == "paused":
                    raise self._paused_error(watch) from None

    def _paused_error(self, watch):
        limit = min(self._memory_limits(watch.workers.values()) or [0])
        return MemoryBudgetError(
            "Dask workers have been paused at their memory limit (%s each) for %g s with "
            "%d tasks waiting (%s); set engine.cache: none to read the Parquet files again "
            "in every pass, input.dtype: float32 to halve the blocks, or give the workers "
            "more memory (dask worker --memory-limit) or add workers"
            % (gigabytes(limit), self.paused_timeout, watch.pending(),
               "loading the table" if not self.summaries else
               "a pass over %s of blocks %s" % (
                   gigabytes(self.bytes_decoded),
                   "decoded again" if self.streaming else "cached")))

    def _memory_limits(self, workers=None):
        """Every worker's memory limit (from ``workers``, the scheduler's worker
        records, if given); None if there is none or any is unlimited (0)."""
        if workers is None:
            workers = self.client.scheduler_info().get("workers", {}).values()
        limits = [w.get("memory_limit") or 0 for w in workers]
        return limits if limits and all(limits) else None

    def worker_memory_limit(self):
        """The smallest worker's memory limit (None if unknown or unlimited)."""
        limits = self._memory_limits()
        return None if limits is None else min(limits)

    def memory_budget(self):
        """The sum of the workers' memory limits (None if any is unlimited)."""
        limits = self._memory_limits()
        return None if limits is None else sum(limits)

    def describe_budget(self, budget):
        return "the %d Dask workers' memory limits add up to %s" % (self.n_workers(),
                                                                   gigabytes(budget))

    def _worker_addresses(self):
        return sorted(self.client.scheduler_info().get("workers", {}))

    def _load_frame(self, frame, decoder):
        """Decode each partition of a Dask DataFrame on the worker that computes it."""
        parts = self.client.compute(frame[decoder.columns].to_delayed())
        self._blocks = self.client.map(_decode_frame, parts, range(len(parts)), decoder=decoder,
                                       pure=False)
        return self._summaries()

    def _summaries(self):
        return self._resubmitting(
            lambda: self._gather(self.client.map(_summary, self._blocks, pure=False)))

    def _pass(self, kernel, hint):
        return self._resubmitting(lambda: self._tree_pass(kernel) if hint.large
                                  else self._holders_pass(kernel))

    def _holders_pass(self, kernel):
        """One task per worker thread over the blocks that worker holds; the
        partial sums come back per block and are merged here in piece order.

        Fewer, larger tasks than one per block: measured on 100,000 x 2,000 in
        16 blocks on 2 workers, 0.16-0.18 s per pass against 0.20-0.22 s.
        """
        client = self.client
        holders = client.who_has(self._blocks)
        threads = self._threads_per_worker(holders)
        groups = {}
        for i, future in enumerate(self._blocks):
            addr = (holders.get(future.key) or [None])[0]
            groups.setdefault(addr, []).append(i)
        tasks = []
        for addr, indices in groups.items():
            n_tasks = min(len(indices), threads.get(addr, 1))
            for part in range(n_tasks):
                idx = indices[part::n_tasks]
                tasks.append(client.submit(
                    _stats_of_blocks, [self._blocks[i] for i in idx], idx, kernel,
                    **_preferring(addr), pure=False))
        parts = sorted((item for result in self._gather(tasks) for item in result),
                       key=lambda item: item[0])
        return tree_merge((stats for _, stats in parts), owned=True)

    runs_tasks = True

    def map_jobs(self, task, jobs):
        """``[task(job) for job in jobs]`` as tasks on the workers."""
        return self.client.gather(self.client.map(task, jobs, pure=False))

    def solve_tasks(self, fn, shared, stages):
        """Independent jobs of the driver as tasks on the workers, the (large)
        ``shared`` objects sent to the cluster once: the one-pass
        cross-validation's paths, from p x p statistics, on the cluster's cores
        instead of the driver's threads.

        ``stages`` is a generator of job lists: each yielded list of ``(i, args)``
        runs as ``fn(shared[i], *args)``, the generator receives the results in
        order and yields the next list (e.g. the fold paths, once the full-data
        paths tell where they stop); what it returns is returned.

        Measured on 100,000 x 2,000, 18 paths of 100 points, 2 workers on 2
        cores: 5.5 s on the driver's two threads (the GIL lets them reach 1.35
        times one thread), 4.8 s as tasks (there the two cores' shared memory
        bandwidth limits them); on a cluster the paths spread over every core.
        Scattered data dies with its worker: the caller then solves on the
        driver (see :func:`~elasticnet_dist.solvers.cv._gram_paths`)."""
        client = self.client
        data = client.scatter(list(shared), hash=False)
        futures = []
        try:
            calls = next(stages)
            while True:
                futures = [client.submit(fn, data[i], *args, pure=False) for i, args in calls]
                calls = stages.send(self._gather(futures))
        except StopIteration as stop:
            return stop.value
        finally:
            client.cancel(futures + data)

    hosts_objects = True

    def host_objects(self, factory, shared, jobs):
        """Objects ``factory(shared[i], *args)`` for each ``(i, args)`` of ``jobs``,
        each kept alive on a worker (a Dask actor, placed where its shared object
        is; the ``shared`` objects are sent to the cluster once). Returns
        :class:`HostedObjects`, whose ``call(j, method, *args)`` runs a method of
        object ``j`` there and returns its result; close it to free them.

        A stateful job a task cannot hold between two calls: the one-pass route's
        early-stopped paths, paused after every segment while the driver scores
        them (:mod:`~elasticnet_dist.solvers.gram_segments`). A worker runs the
        methods of its objects one at a time (Dask gives actors one thread per
        worker), so a cluster of single-threaded workers uses all its cores.
        An object dies with its worker: the call raises, and the caller starts
        over on the driver."""
        client = self.client
        data = client.scatter(list(shared), hash=False)
        futures = [client.submit(factory, data[i], *args, actor=True, pure=False)
                   for i, args in jobs]
        hosted = HostedObjects(client, futures + data)
        try:
            hosted.actors = self._gather(futures)
        except BaseException:
            hosted.close()
            raise
        return hosted

    def _threads_per_worker(self, holders):
        """Threads of each worker holding blocks; asked again only when a new worker
        appears (a restarted one, or one the cluster added)."""
        known = self._threads
        if any(addrs and addrs[0] not in known for addrs in holders.values()):
            known = {addr: max(1, w.get("nthreads", 1))
                     for addr, w in self.client.scheduler_info().get("workers", {}).items()}
            self._threads = known
        return known

    def _tree_pass(self, kernel):
        """A pass with large partial sums (e.g. the full Gram, p x p per block): the
        lower levels of :func:`tree_merge` run as tasks on the workers, so the
        client receives at most FAN_IN partial results, not one per block.

        When there are at least as many leaf groups (FAN_IN consecutive blocks)
        as worker threads, a group held by one worker is one task that adds each
        block's sums to the node as it makes them (:func:`_leaf_stats`): no
        per-block result of K p x p sums is kept (100,000 x 2,000, 5 folds, 16
        blocks on 2 workers: 8 results of 160 MB per worker before), and the
        sums are the same, in the same order, as the merge tasks'."""
        client, blocks = self.client, self._blocks
        n_groups = -(-len(blocks) // FAN_IN)
        holders = client.who_has(blocks)
        if n_groups < sum(self._threads_per_worker(holders).values()):
            return self._merge_up(client.map(_stats, blocks, kernel=kernel, pure=False))
        leaves, below = [], []
        for first in range(0, len(blocks), FAN_IN):
            group = blocks[first:first + FAN_IN]
            where = {addr for future in group for addr in holders.get(future.key, ())[:1]}
            if len(where) == 1 and all(holders.get(future.key) for future in group):
                leaves.append(client.submit(_leaf_stats, group, kernel,
                                            **_preferring(where.pop()), pure=False))
            else:  # spread over workers: each block where it is, merged by one task
                parts = client.map(_stats, group, kernel=kernel, pure=False)
                below += parts
                leaves.append(client.submit(merge_group, parts, pure=False))
        return self._merge_up(leaves, below)

    def driver_results(self):
        """The root of a large pass's tree is merged on the workers (:meth:`_merge_up`):
        the driver receives one result and may copy it."""
        return 2

    def _merge_up(self, parts, below=()):
        """:func:`tree_merge` of futures (the tree's leaves or, from
        :meth:`_tree_pass`, its level-1 nodes): the lower levels as tasks on the
        workers; ``below``: futures these are computed from."""
        client, below = self.client, list(below)
        while len(parts) > FAN_IN:
            below += parts
            parts = [client.submit(merge_group, parts[i:i + FAN_IN], pure=False)
                     for i in range(0, len(parts), FAN_IN)]
        # the root, merge_group's left fold over its (at most FAN_IN) children, as a
        # chain of tasks: the driver receives one result, not every child (8 blocks'
        # K p x p sums at once: 10.4 GB peak at p = 4,000 with 5 folds); the same
        # additions in the same order, so the same bits
        chain = [parts[0]]
        for part in parts[1:]:
            chain.append(client.submit(_fold_in, chain[-1], part, pure=False))
        # every link is watched: a link running counts as the pass's progress
        return merge_stats(self._gather(chain[-1:], upstream=below + parts + chain[:-1]),
                           owned=True)

    def _release(self):
        self._blocks = []
        self._pieces, self._decoder = [], None

    def close(self):
        super().close()
        for obj in self._owned:
            obj.close()
        self._owned = []


class HostedObjects:
    """Objects living on the workers (:meth:`DaskEngine.host_objects`)."""

    def __init__(self, client, futures):
        self._client, self._futures, self.actors = client, futures, []

    def call(self, j, method, *args):
        """``objects[j].method(*args)``, run on its worker (blocks until it returns)."""
        return getattr(self.actors[j], method)(*args).result()

    def close(self):
        self._client.cancel(self._futures)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
