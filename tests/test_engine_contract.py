"""The contract every engine keeps, run against local, Dask and Spark alike.

An engine knows nothing of elastic nets: it decodes pieces into blocks, maps a
kernel (any function ``block -> dict of float64 arrays``) over them and adds the
results with the fixed tree of :mod:`elasticnet_dist.reduction`. These tests use
a kernel that is not the elastic-net one, so an engine that peeked at the
request (or at the meaning of the sums) would fail here. Adding an engine (say
Ray) means adding its name to ENGINES below and passing this file.
"""
from __future__ import annotations

import numpy as np
import pytest

from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.engines import make_engine
from elasticnet_dist.errors import MemoryBudgetError
from elasticnet_dist.io import BlockDecoder, open_table
from elasticnet_dist.reduction import LARGE_RESULT_BYTES, PassHint, tree_merge

N_PIECES = 11  # two leaf groups of the tree, the second one partial


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    table = make_wide_table(230, 6, n_informative=3, seed=21)
    return write_parquet(table, str(tmp_path_factory.mktemp("contract") / "t"),
                         n_files=N_PIECES)


@pytest.fixture(params=["local", pytest.param("dask", marks=pytest.mark.cluster),
                        pytest.param("spark", marks=pytest.mark.cluster)])
def loaded(request, table_path):
    """An engine of each kind with the table's pieces decoded, and the local blocks."""
    handle = {"local": None, "dask": "dask_client", "spark": "spark"}[request.param]
    cluster = None if handle is None else request.getfixturevalue(handle)
    engine = make_engine(request.param, cluster)
    table = open_table(table_path)
    decoder = BlockDecoder(tuple("f%04d" % j for j in range(6)), "y")
    summaries = engine.load(table.pieces, decoder)
    blocks = [decoder.load(piece) for piece in table.pieces]
    yield engine, summaries, blocks
    engine.close()


def moments_kernel():
    """A kernel that is not the elastic net's: raw sums, cross products and a cube.
    Made inside a function so that Dask and Spark ship it by value."""
    def kernel(block):
        X = np.asarray(block.X, dtype=np.float64)
        return {"rows": np.float64(X.shape[0]), "sum": X.sum(axis=0), "cross": X.T @ X,
                "cube": np.float64((block.y ** 3).sum())}
    return kernel


@pytest.mark.parametrize("hint", [PassHint(), PassHint(LARGE_RESULT_BYTES)],
                         ids=["small", "large"])
def test_a_pass_is_the_fixed_tree_over_the_kernel_of_every_block(loaded, hint):
    """Small results come back per block, large ones are merged where they are made:
    either way the same sums in the same order, so the same bits as the tree here."""
    engine, summaries, blocks = loaded
    kernel = moments_kernel()
    expected = tree_merge([kernel(b) for b in blocks])
    before = engine.n_passes
    got = engine.run_pass(kernel, hint)
    assert engine.n_passes == before + 1
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert got["rows"] == 230 == engine.n_rows


def test_summaries_come_in_piece_order_and_describe_the_table(loaded):
    engine, summaries, blocks = loaded
    assert [s.n_rows for s in summaries] == [b.summary.n_rows for b in blocks]
    assert engine.n_features == 6 and engine.n_partitions == N_PIECES
    x, y = engine.reference_row()
    np.testing.assert_array_equal(x, blocks[0].X[0])
    assert y == blocks[0].y[0]
    facts = engine.describe()
    assert facts["rows"] == 230 and facts["partitions"] == N_PIECES and facts["workers"] >= 1


def test_map_jobs_returns_every_result_in_order(loaded):
    engine = loaded[0]
    assert engine.map_jobs(lambda job: job * job, list(range(7))) == [j * j for j in range(7)]


def test_solve_tasks_is_a_declared_capability(loaded):
    """Engines that run driver jobs on workers say so (``runs_tasks``) and answer the
    staged protocol: each yielded job list runs as ``fn(shared[i], *args)``."""
    engine = loaded[0]
    if not engine.runs_tasks:
        with pytest.raises(NotImplementedError):
            engine.solve_tasks(None, [], iter(()))
        return

    def stages():
        first = yield [(0, (1,)), (1, (2,))]
        second = yield [(1, (first[0],))]
        return first, second

    out = engine.solve_tasks(lambda shared, k: shared * k, [10, 100], stages())
    assert out == ([10, 200], [1000])


class Counter:
    """A stateful object for ``host_objects``: its state must survive between calls."""

    def __init__(self, shared, start):
        self.shared, self.total = shared, start

    def add(self, k):
        self.total += self.shared * k
        return self.total


def test_host_objects_is_a_declared_capability(loaded):
    """Engines that keep objects on their workers say so (``hosts_objects``): each job
    ``(i, args)`` becomes ``factory(shared[i], *args)`` there, and ``call`` runs its
    methods on the state earlier calls left."""
    engine = loaded[0]
    if not engine.hosts_objects:
        with pytest.raises(NotImplementedError):
            engine.host_objects(Counter, [], [])
        return
    with engine.host_objects(Counter, [10, 100], [(0, (1,)), (1, (2,)), (0, (3,))]) as hosted:
        assert [hosted.call(j, "add", 1) for j in range(3)] == [11, 102, 13]
        assert [hosted.call(j, "add", 2) for j in range(3)] == [31, 302, 33]


def test_a_pass_too_large_for_memory_is_refused_before_it_runs(loaded):
    engine = loaded[0]
    before = engine.n_passes
    hint = PassHint(result_bytes=2**60, what="the test's giant matrices",
                    advice="the advice of the caller")
    with pytest.raises(MemoryBudgetError, match="the test's giant matrices.*the advice of the "
                                                "caller"):
        engine.run_pass(moments_kernel(), hint)
    assert engine.n_passes == before
