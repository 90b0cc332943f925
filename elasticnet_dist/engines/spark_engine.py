"""The Spark engine: blocks decoded once per executor host, a pass is one Spark job.

A Spark DataFrame or RDD cached by Spark lives in the JVM: every pass would
ship it to the Python workers again (DESIGN.md 2a: 4.6-8.2 s per pass on
100,000 x 2,000), and Spark SQL's row path over thousands of columns is
slower still (36 s). So this engine caches where the arithmetic runs: the
first task for piece ``i`` reads it with pyarrow (Parquet projection),
decodes it and writes the block to the executor's local disk as ``.npy``
files; every later task on that host maps those files (``np.load(...,
mmap_mode="r")``), so all Python workers of the host share one copy in the
page cache and a replaced Python worker or executor just maps or reloads it.

A pass is one job over a cached RDD of slots (one partition per task slot,
each looking after a run of consecutive pieces); each task returns its
blocks' statistics one by one; the driver merges them with
:func:`~elasticnet_dist.reduction.tree_merge` in piece order. Passes whose
results are p x p per block (the Gram matrices) are merged within each task
first, into the whole subtrees of that same merge tree, so the driver receives
a few per slot and the sums are added in the same order as on every engine.

Spark DataFrames and in-memory tables are first written as Parquet to a
staging directory (``staging_dir``; on a multi-host cluster it must be a path
every executor can read, such as an HDFS or object-store URL).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
import tempfile
import uuid

import numpy as np
import scipy.sparse as sp
import pyarrow.parquet as pq

from ..errors import BadValuesError, InputError, UnreadableFileError, jvm_gone_error
from ..io.blocks import Block
from ..io.columns import spark_columns
from ..reduction import (FAN_IN, LazyParts, finish_tree, group_stats_of, subtrees,
                         tree_merge)
from .base import BlockEngine, check_reachable

#: Blocks held by this Python process: (token, piece index) -> Block (memory-mapped).
_BLOCKS = {}


def _cache_dir(token):
    root = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")[0] or tempfile.gettempdir()
    return os.path.join(root, "elasticnet_dist-blocks", token)


def _map_spilled(path):
    try:
        if os.path.exists(path + ".Xs.npy"):  # a CSR block: values, indices, row pointers
            X = sp.csr_matrix((np.load(path + ".Xd.npy", mmap_mode="r"),
                               np.load(path + ".Xi.npy", mmap_mode="r"),
                               np.load(path + ".Xp.npy")),
                              shape=tuple(np.load(path + ".Xs.npy")), copy=False)
        else:
            X = np.load(path + ".X.npy", mmap_mode="r")
        y = np.load(path + ".y.npy")
        s = np.load(path + ".s.npy") if os.path.exists(path + ".s.npy") else None
        f = np.load(path + ".f.npy") if os.path.exists(path + ".f.npy") else None
        o = np.load(path + ".o.npy") if os.path.exists(path + ".o.npy") else None
    except (OSError, ValueError):
        return None
    return Block(X, y, s, None, f, o)


def _spill(block, path):
    """Write the block next to ``path`` and return it memory-mapped. Each file is
    written under a temporary name and renamed; X last, as it marks completion (a
    CSR block: its three arrays, then its shape). A stand-in of a statistics store
    (no rows) is kept as it is."""
    if block.origin is not None and block.X.shape[0] == 0:
        return block
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%s.tmp" % (path, uuid.uuid4().hex)
    parts = [(name, array) for name, array in (("y", block.y), ("s", block.s),
                                               ("f", block.fold_bounds), ("o", block.o))
             if array is not None]
    X = block.X
    parts += ([("Xd", X.data), ("Xi", X.indices), ("Xp", X.indptr),
               ("Xs", np.array(X.shape, dtype=np.int64))] if sp.issparse(X) else [("X", X)])
    for name, array in parts:
        with open(tmp + name, "wb") as f:
            np.save(f, array)
        os.replace(tmp + name, "%s.%s.npy" % (path, name))
    mapped = _map_spilled(path)
    mapped.summary, mapped.origin = block.summary, block.origin
    return mapped


def _cached_block(token, index, piece, decoder):
    key = (token, index)
    block = _BLOCKS.get(key)
    if block is None:
        path = os.path.join(_cache_dir(token), str(index))
        block = _map_spilled(path)
        if block is None:
            block = _spill(decoder.load(piece), path)
        elif decoder.store is not None:  # spilled by another Python worker: its store entry
            block.origin = decoder.store.origin(decoder, piece)
        _BLOCKS[key] = block
    return block


def slot_range(slot, n_slots, n_pieces, fan_in=FAN_IN):
    """The consecutive pieces one slot looks after. Runs start at multiples of the
    widest node of the merge tree (``fan_in**L`` pieces) that still leaves every
    slot some, so that a slot holds whole subtrees (:func:`~..reduction.subtrees`)
    and sends few partial sums: 16 pieces on 2 slots, one each."""
    align = 1
    while n_pieces >= align * fan_in * n_slots:
        align *= fan_in
    units = -(-n_pieces // align)
    lo, hi = (min(n_pieces, align * (units * j // n_slots)) for j in (slot, slot + 1))
    return range(lo, hi)


def _slot_pieces(slot, n_slots, n_pieces, rows):
    """:func:`slot_range`, after the task's input rows were read to the end:
    PySpark reuses a Python worker only when its task consumed all its input,
    and a new worker pays the imports again (about 1.7 s here, against 0.14 s
    for the work itself)."""
    for _ in rows:
        pass
    return slot_range(slot, n_slots, n_pieces)


def _load_task(token, pieces, decoder, n_slots, slot, rows):
    for index in _slot_pieces(slot, n_slots, len(pieces), rows):
        block = _cached_block(token, index, pieces[index], decoder)
        if block.summary is None:  # mapped from an earlier attempt on this host: decode again
            _BLOCKS.pop((token, index), None)
            path = os.path.join(_cache_dir(token), str(index))
            block = _spill(decoder.load(pieces[index]), path)
            _BLOCKS[(token, index)] = block
        yield index, block.summary


def _pass_task(token, pieces, decoder, kernel, n_slots, slot, rows):
    for index in _slot_pieces(slot, n_slots, len(pieces), rows):
        yield index, kernel(_cached_block(token, index, pieces[index], decoder))


def _gather_task(token, pieces, decoder, n_slots, slot, rows):
    """The slot's blocks as arrays in memory (their files are memory-mapped here)."""
    for index in _slot_pieces(slot, n_slots, len(pieces), rows):
        block = _cached_block(token, index, pieces[index], decoder)
        X = block.X.copy() if sp.issparse(block.X) else np.array(block.X)
        yield index, (X, block.y, block.s, block.fold_bounds, block.o)


def _merged_pass_task(token, pieces, decoder, kernel, n_slots, slot, rows):
    """The slot's run of pieces merged into the largest whole nodes of the merge
    tree (:func:`~..reduction.subtrees`): for passes whose results are p x p (or
    K p x p) per piece, so that the driver receives a few per slot, not one per
    piece, and finishes the same tree as every other engine."""
    run = _slot_pieces(slot, n_slots, len(pieces), rows)

    def blocks(first, stop):
        return [_cached_block(token, i, pieces[i], decoder) for i in range(first, stop)]

    parts = LazyParts(lambda i: kernel(blocks(i, i + 1)[0]), run)
    group = lambda first, stop: group_stats_of(kernel, blocks(first, stop))  # noqa: E731
    yield from subtrees(parts, run.start, len(pieces), group=group).items() if len(run) else ()


def _drop_task(token, _index, rows):
    for _ in rows:
        pass
    for key in [k for k in _BLOCKS if k[0] == token]:
        del _BLOCKS[key]
    shutil.rmtree(_cache_dir(token), ignore_errors=True)
    return iter(())


def _collect(rdd):
    """``rdd.collect()``, with our input errors raised on a worker raised here again.

    Spark wraps a Python worker's exception in its own (with the worker's
    traceback as text); an :class:`InputError` there is the user's problem, not
    an engine failure, so it comes back as the same class with its message.
    """
    try:
        return rdd.collect()
    except Exception as exc:
        text = str(exc)
        for cls in (UnreadableFileError, BadValuesError, InputError):
            marker = "%s: " % cls.__name__
            if marker in text:
                message = text.split(marker, 1)[1].splitlines()[0]
                raise cls(message) from None
        raise_if_jvm_gone(exc)
        raise


def raise_if_jvm_gone(exc):
    """:func:`jvm_gone` raised, if ``exc`` is one."""
    error = jvm_gone(exc)
    if error is not None:
        raise error from None


def jvm_gone(exc):
    """:func:`~elasticnet_dist.errors.jvm_gone_error` of ``exc``, asking the gateway
    where the error alone cannot tell.

    py4j turns a command it could not send (the JVM killed as the call began) into
    a bare "An error occurred while calling oN.method", raised outside the network
    error it logged, the same text as a few errors of a live JVM: for that one
    the gateway is asked a trivial call, and a gateway that does not answer is a
    lost JVM."""
    bare = type(exc).__name__ == "Py4JError" and "Trace:" not in str(exc)
    return jvm_gone_error(exc, lost=bare and not _gateway_answers())


def _gateway_answers():
    """Whether this process's Spark gateway answers a trivial call into the JVM (True
    when there is none to ask: nothing is known to be lost)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return True
    try:
        gateway.jvm.java.lang.System.currentTimeMillis()
    except Exception:  # noqa: BLE001 - any failure to answer is the answer
        return False
    return True


def spark_session(master=None, conf=None):
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``).

    Sessions started here bind to 127.0.0.1 when the master is local, have the
    web UI off, run executors' Python with this interpreter, get
    :func:`default_driver_memory`, and take the settings of ``conf``
    (``{"spark.executor.memory": "8g", ...}``, which win). Under
    ``spark-submit`` (the JVM is already up) the master and settings given
    to ``spark-submit`` apply.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    submitted = master is None and "PYSPARK_GATEWAY_PORT" in os.environ
    # Executors must run this interpreter (it has this package); the setting is
    # read from the environment when the session's JVM starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("elasticnet_dist")
    if not submitted:
        master = master or "local[*]"
        builder = (builder.master(master).config("spark.ui.enabled", "false")
                   .config("spark.pyspark.python", sys.executable)
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.maxResultSize", "0"))
        if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
            builder = (builder.config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.bindAddress", "127.0.0.1"))
        builder = builder.config("spark.driver.memory", default_driver_memory())
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    session = builder.getOrCreate()
    import logging

    if not logging.getLogger("elasticnet_dist").isEnabledFor(logging.DEBUG):
        # Spark logs every job, stage and task at INFO (about 340 lines for one select
        # under spark-submit); the tool's own log says what happened
        session.sparkContext.setLogLevel("WARN")
    return session


def default_driver_memory():
    """A quarter of this machine's memory, 2 to 16 GiB (Spark's own default, 1 GiB,
    cannot take the one-pass CV route's partial sums: K + 1 Gram matrices of
    8 p^2 bytes per slot, 192 MB each at p = 2,000 and 5 folds)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return "%dg" % max(2, min(16, total // 4 // 2**30))


class SparkEngine(BlockEngine):
    """Passes as Spark jobs.

    Parameters
    ----------
    cluster : None, str or SparkSession
        A session is used as it is; a string is a master URL
        (``local[2]``, ``spark://host:7077``, ``yarn``, ...); None uses the
        active session or starts ``local[*]``.
    staging_dir : str, optional. Where DataFrames and in-memory tables are
        written as Parquet before loading (default: a temporary directory).
    conf : dict, optional. Settings of a session started here (see
        :func:`spark_session`).
    slots : int, optional. Tasks per pass (default: the context's default
        parallelism); each looks after a run of consecutive pieces. The answer
        does not depend on it.
    """

    name = "spark"
    #: One Spark job per pass: about 0.15 s in local mode (benchmarks/README.md).
    pass_overhead = 0.15
    frame_kind = "spark"

    def __init__(self, cluster=None, staging_dir=None, conf=None, slots=None):
        super().__init__()
        self._slots_wanted = slots
        from pyspark.sql import SparkSession

        self.session = (cluster if isinstance(cluster, SparkSession)
                        else spark_session(cluster, conf))
        self._sc = self.session.sparkContext
        self._token = uuid.uuid4().hex
        self._staging_root = staging_dir
        self._staged = None
        self._pieces, self._decoder, self._rdd = [], None, None

    def n_workers(self):
        return int(self._sc.defaultParallelism)

    def cores(self):
        return max(1, self.n_workers())

    def _streams(self, pieces, decoder):
        """Never: blocks live on the executors' local disks, memory-mapped, so a
        table larger than memory is paged in from there in every pass."""
        return False

    def _load(self, pieces, decoder):
        if pieces and not hasattr(pieces[0], "path"):
            pieces = self._stage_memory(pieces, decoder)
        check_reachable(pieces, self.name)
        self._pieces, self._decoder = pieces, decoder
        # One task per slot, each looking after every n-th piece: a PySpark task
        # costs about 60 ms here (16 tiny tasks on local[2]: 1.06 s, 2 tasks:
        # 0.16 s). The slot RDD is cached, so Spark schedules slot j where it
        # ran before, where its blocks are.
        wanted = self._slots_wanted or int(self._sc.defaultParallelism)
        self._slots = max(1, min(len(pieces), int(wanted)))
        self._rdd = self._sc.parallelize(range(self._slots), self._slots).cache()
        task = functools.partial(_load_task, self._token, pieces, decoder, self._slots)
        return [s for _, s in sorted(_collect(self._rdd.mapPartitionsWithIndex(task)),
                                     key=lambda t: t[0])]

    def _load_frame(self, frame, decoder):
        """Write the needed columns of a Spark DataFrame as Parquet, then load the files."""
        from ..io.table import check_file_schemas, open_table

        path = self._new_staging_dir()
        frame.select(*spark_columns(decoder.columns)).write.mode("overwrite").parquet(path)
        table = open_table(path)
        check_file_schemas(table, decoder.columns)
        return self._load(table.pieces, decoder)

    def _pass(self, kernel, hint):
        # large results (p x p per piece): each task merges the whole subtrees of the
        # merge tree among its pieces and the driver finishes the tree; the same sums
        # in the same order as on every engine and for any slot count
        big = hint.large
        task = functools.partial(_merged_pass_task if big else _pass_task, self._token,
                                 self._pieces, self._decoder, kernel, self._slots)
        try:
            parts = _collect(self._rdd.mapPartitionsWithIndex(task))
        except Exception as exc:
            raise_if_jvm_gone(exc)
            raise
        if big:
            return finish_tree(dict(parts), len(self._pieces), owned=True)
        return tree_merge((stats for _, stats in sorted(parts, key=lambda t: t[0])), owned=True)

    def gather_bytes(self):
        return None if self._rdd is None else self.bytes_cached

    def gather_blocks(self):
        task = functools.partial(_gather_task, self._token, self._pieces, self._decoder,
                                 self._slots)
        parts = dict(_collect(self._rdd.mapPartitionsWithIndex(task)))
        return [Block(*parts[i][:3], summary, *parts[i][3:])
                for i, summary in enumerate(self.summaries)]

    def map_jobs(self, task, jobs):
        """``[task(job) for job in jobs]`` as Spark tasks (one partition per slot)."""
        n = max(1, min(len(jobs), int(self._sc.defaultParallelism)))
        return _collect(self._sc.parallelize(jobs, n).map(task))

    def _stage_memory(self, pieces, decoder):
        from ..io.table import open_table

        path = self._new_staging_dir()
        os.makedirs(path)
        for i, piece in enumerate(pieces):
            pq.write_table(piece.read(decoder.columns), os.path.join(path, "part-%05d.parquet"
                                                                      % i))
        # the staged files keep the slices' names for the folds of position
        return [dataclasses.replace(staged, source=piece.source, row_offset=piece.row_offset)
                for staged, piece in zip(open_table(path).pieces, pieces, strict=True)]

    def _new_staging_dir(self):
        if self._staged is None:
            self._staged = tempfile.mkdtemp(prefix="elasticnet_dist-stage-",
                                            dir=self._staging_root)
        return os.path.join(self._staged, uuid.uuid4().hex)

    def _release(self):
        if self._rdd is not None:
            try:  # best effort: the session may already be stopped, or its JVM dead
                self._rdd.unpersist()
                n = max(self._rdd.getNumPartitions(), int(self._sc.defaultParallelism))
                self._sc.parallelize(range(n), n).mapPartitionsWithIndex(
                    functools.partial(_drop_task, self._token)).count()
            except Exception:
                pass
            shutil.rmtree(_cache_dir(self._token), ignore_errors=True)
        self._rdd = None
        self._token = uuid.uuid4().hex

    def close(self):
        super().close()
        if self._staged is not None:
            shutil.rmtree(self._staged, ignore_errors=True)
            self._staged = None
