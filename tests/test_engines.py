"""Dask and Spark engines against the local one: same coefficients to 1e-9 and the
same selected set on every engine and for 1, 7 and 64 partitions; DataFrame input
of each engine; hostile column names; reports; errors raised on workers."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from elasticnet_dist import ElasticNet
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.errors import BadValuesError, UnreadableFileError

ALPHA, L1 = 0.03, 0.5
TOL = 1e-10


@pytest.fixture(scope="module")
def problems():
    return {"squared": make_wide_table(640, 40, n_informative=8, seed=11),
            "logistic": make_wide_table(640, 40, n_informative=8, seed=12, loss="logistic")}


@pytest.fixture(scope="module")
def tables(problems, tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    return {(loss, n): write_parquet(t, str(root / ("%s-%d" % (loss, n))), n_files=n)
            for loss, t in problems.items() for n in (1, 7, 64)}


@pytest.fixture(params=["dask", "spark"])
def engine(request):
    """An engine name and the cluster handle the tests share."""
    name = request.param
    handle = request.getfixturevalue("dask_client" if name == "dask" else "spark")
    return name, handle


def fit(source, engine, loss="squared", **kw):
    name, handle = engine
    fit_kw = {k: kw.pop(k) for k in list(kw) if k in ("label", "features", "weight")}
    fit_kw.setdefault("label", "y")
    est = ElasticNet(alpha=ALPHA, l1_ratio=L1, loss=loss, tol=TOL, engine=name, cluster=handle,
                     **kw)
    return est.fit(source, **fit_kw)


def assert_same_fit(est, ref):
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-9 * scale)
    assert abs(est.intercept_ - ref.intercept_) <= 1e-9 * max(1.0, abs(ref.intercept_))
    assert (est.coef_ != 0).tolist() == (ref.coef_ != 0).tolist()


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_engines_agree_with_local_for_1_7_64_partitions(engine, loss, tables):
    ref = fit(tables[loss, 1], ("local", None), loss=loss)
    assert 0 < (ref.coef_ != 0).sum() < 40
    for n in (1, 7, 64):
        est = fit(tables[loss, n], engine, loss=loss)
        assert_same_fit(est, ref)
        report = est.fit_report_
        assert report["engine"] == engine[0] and report["partitions"] == n
        assert report["rows"] == 640 and report["workers"] == 2
        assert report["n_passes"] == est.n_passes_ >= 1
        assert set(report["timings"]) == {"load", "statistics", "solve"}
        assert report["engine_start_s"] < 2.0  # the shared cluster, not a new one
        assert report["bytes_cached"] <= 1.2 * 640 * 41 * 8


def test_in_memory_arrays_and_pandas_on_cluster_engines(engine, problems):
    t = problems["squared"]
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=TOL).fit(t.X, t.y)
    est = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=TOL, engine=engine[0],
                     cluster=engine[1]).fit(t.X, t.y)
    assert_same_fit(est, ref)
    assert not hasattr(est, "feature_names_in_")
    df = pd.DataFrame(t.X, columns=t.names)
    df["y"] = t.y
    est = fit(df, engine)
    assert_same_fit(est, ref)
    assert list(est.feature_names_in_) == t.names


def test_float32_blocks(engine, tables, problems):
    t = problems["squared"]
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=TOL).fit(
        t.X.astype(np.float32).astype(np.float64), t.y)
    est = fit(tables["squared", 7], engine, dtype="float32")
    assert_same_fit(est, ref)
    assert est.fit_report_["bytes_cached"] <= 0.6 * 640 * 41 * 8


def test_dask_dataframe_input(dask_client, problems, tables):
    import dask.dataframe as dd

    ref = fit(tables["squared", 1], ("local", None))
    ddf = dd.read_parquet(tables["squared", 7])
    est = fit(ddf, ("dask", dask_client), features=["f*"])
    assert_same_fit(est, ref)
    assert est.fit_report_["partitions"] == ddf.npartitions
    local = fit(ddf, ("local", None))  # a Dask DataFrame on another engine: read in-process
    assert_same_fit(local, ref)


HOSTILE = ["a b", "x.y", "it's", 'say "hi"', "naïve", "back`tick", "[br]", "Ωmega"]


def hostile_frame(problems):
    t = problems["squared"]
    names = HOSTILE + t.names[len(HOSTILE):]
    df = pd.DataFrame(t.X, columns=names)
    df["label y"] = t.y
    return df


def test_spark_dataframe_with_hostile_column_names(spark, problems):
    df = hostile_frame(problems)
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=TOL).fit(df.drop(columns="label y"),
                                                            df["label y"])
    sdf = spark.createDataFrame(df).repartition(3)
    est = fit(sdf, ("spark", spark), label="label y")
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-9 * scale)
    assert list(est.feature_names_in_) == list(df.columns[:-1])
    assert est.fit_report_["partitions"] >= 1


def test_hostile_names_from_parquet_on_every_engine(engine, problems, tmp_path):
    df = hostile_frame(problems)
    path = str(tmp_path / "hostile.parquet")
    df.to_parquet(path, index=False)
    ref = fit(path, ("local", None), label="label y", features=HOSTILE)
    est = fit(path, engine, label="label y", features=HOSTILE)
    assert list(est.feature_names_in_) == HOSTILE
    assert_same_fit(est, ref)


def test_bad_values_are_reported_from_the_workers(engine, problems, tmp_path):
    t = problems["squared"]
    X = t.X.copy()
    X[100, 3] = np.nan
    df = pd.DataFrame(X, columns=t.names)
    df["y"] = t.y
    root = tmp_path / "nan"
    root.mkdir()
    df.iloc[:320].to_parquet(root / "part-0.parquet", index=False)
    df.iloc[320:].to_parquet(root / "part-1.parquet", index=False)
    with pytest.raises(BadValuesError, match=r"'f0003' \(1\).*part-0\.parquet"):
        fit(str(root), engine)


def test_memory_filesystem_is_refused_by_cluster_engines(engine, problems):
    import fsspec
    import pyarrow.parquet as pq
    import pyarrow as pa

    t = problems["squared"]
    with fsspec.filesystem("memory").open("/engines/t.parquet", "wb") as f:
        pq.write_table(pa.table({"a": t.X[:, 0], "y": t.y}), f)
    with pytest.raises(UnreadableFileError, match=r"memory:// file system.*engine='local'"):
        fit("memory://engines/t.parquet", engine)


def test_dask_engine_by_scheduler_address(dask_client, tables):
    ref = fit(tables["squared", 1], ("local", None))
    est = fit(tables["squared", 7], ("dask", dask_client.scheduler.address))
    assert_same_fit(est, ref)
    assert dask_client.status == "running"  # the shared client is left alone


def test_a_file_gone_after_planning_is_named_by_the_worker_error(engine):
    from elasticnet_dist.engines import make_engine
    from elasticnet_dist.io import BlockDecoder, FilePiece

    eng = make_engine(engine[0], engine[1])
    try:
        with pytest.raises(UnreadableFileError, match=r"cannot read /nonexistent/part-9\.parquet"):
            eng.load([FilePiece("/nonexistent/part-9.parquet", n_rows=5)],
                     BlockDecoder(("a",), "y"))
    finally:
        eng.close()


def test_dask_accounts_the_cached_blocks_at_their_real_size(dask_client, tables):
    from elasticnet_dist.engines import make_engine
    from elasticnet_dist.loading import load_table

    engine = make_engine("dask", dask_client)
    try:
        load_table(tables["squared", 7], engine, label="y")
        sizes = dask_client.nbytes(summary=False)
        held = sum(sizes[f.key] for f in engine._blocks)
        raw = 640 * 41 * 8  # 40 features and the label, float64
        assert held == engine.bytes_cached and raw <= held <= 1.2 * raw
    finally:
        engine.close()


@pytest.mark.parametrize("n_pieces", [64, 24])
@pytest.mark.parametrize("n_folds", [0, 5])
def test_gram_pass_merged_on_the_workers_equals_the_local_tree(engine, problems, n_pieces,
                                                               n_folds, tmp_path_factory):
    """64 or 24 pieces: the first levels of the reduction tree run on the cluster
    (on Dask 2 workers: 8 and 3 leaf groups, whole-group tasks; of 24 pieces the
    middle group is split between the workers), with the same sums in the same
    order as the local engine's tree: the same bits, with and without folds."""
    from elasticnet_dist.engines import LocalEngine, make_engine
    from elasticnet_dist.loading import load_table
    from elasticnet_dist.passes import BlockKernel
    from elasticnet_dist.problem import moments_request
    from elasticnet_dist.reduction import LARGE_RESULT_BYTES, PassHint

    path = str(tmp_path_factory.getbasetemp() / ("gram-%d" % n_pieces))
    if not os.path.exists(path):
        write_parquet(problems["squared"], path, n_files=n_pieces)
    local = LocalEngine()
    load_table(path, local, label="y", n_folds=n_folds)
    request = moments_request(local, full_gram=True)[0]
    if n_folds:
        request = replace(request, n_folds=n_folds, by_fold=True)
    kernel, large = BlockKernel(request), PassHint(LARGE_RESULT_BYTES)  # merged where made
    expected = local.run_pass(kernel, large)
    cluster = make_engine(engine[0], engine[1])
    try:
        load_table(path, cluster, label="y", n_folds=n_folds)
        if engine[0] == "dask":
            from distributed import get_task_stream
            with get_task_stream(engine[1]) as stream:
                got = cluster.run_pass(kernel, large)
            names = [task["key"] if isinstance(task["key"], str) else task["key"][0]
                     for task in stream.data]
            leaves = sum(name.startswith("_leaf_stats") for name in names)
            assert leaves == {64: 8, 24: 2}[n_pieces]  # the split group: block tasks
        else:
            got = cluster.run_pass(kernel, large)
    finally:
        cluster.close()
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_by_fold_gram_in_chunks_equals_each_folds_cross_products():
    """The by-fold pass writes each fold's lower triangle in place (syrk, accumulated
    over chunks); completed, it is every fold's centred X'X."""
    from elasticnet_dist.passes import PassRequest, chunked_block_stats, symmetric_grams

    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((230, 9)), rng.standard_normal(230)
    bounds = np.array([0, 40, 40, 150, 230])  # fold 1 is empty in this block
    shift = X[0].copy()
    request = PassRequest(gradient=False, moments=True, shift_x=shift, full_gram=True,
                          n_folds=4, by_fold=True)
    stats = symmetric_grams(chunked_block_stats(X, y, None, request, rows=17,
                                                fold_bounds=bounds))
    for f in range(4):
        A = X[bounds[f]:bounds[f + 1]] - shift
        np.testing.assert_allclose(stats["gram"][f], A.T @ A, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(stats["sx"][f], A.sum(0), rtol=1e-13, atol=1e-12)
    assert stats["n_rows"].tolist() == [40, 0, 110, 80]


@pytest.mark.parametrize("fold_by_fold", [False, True])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_holdout_pass_sums_each_points_training_and_held_out_rows(fold_by_fold, loss,
                                                                   monkeypatch):
    """A holdout pass, over the whole block at once (small folds) or fold by fold (large
    ones), in chunks: each point's sums over its training rows, and its held-out loss."""
    from elasticnet_dist import passes
    from elasticnet_dist.losses import get_loss
    from elasticnet_dist.passes import HessianBlock, PassRequest, chunked_block_stats

    monkeypatch.setattr(passes, "FOLD_CHUNK_ROWS", 0 if fold_by_fold else 10**9)
    rng = np.random.default_rng(5)
    X, s = rng.standard_normal((230, 9)), rng.random(230)
    y = (rng.random(230) < 0.5).astype(float) if loss == "logistic" else rng.standard_normal(230)
    bounds = np.array([0, 40, 40, 150, 230])  # fold 1 is empty in this block
    fold = np.repeat(np.arange(4), np.diff(bounds))
    coefs, holdout = 0.3 * rng.standard_normal((4, 9)), np.array([-1, 0, 2, 3])
    request = PassRequest(loss=loss, coefs=coefs, intercepts=np.full(4, 0.1), holdout=holdout,
                          n_folds=4, hessians=tuple(
                              HessianBlock(cols=np.array([1, 4, 7]), point=j, center=None)
                              for j in range(4)))
    stats = chunked_block_stats(X, y, s, request, rows=17, fold_bounds=bounds)
    L = get_loss(loss)
    for j in range(4):
        train = fold != holdout[j]
        eta = X @ coefs[j] + 0.1
        h = s * train * (1.0 if loss == "squared" else L.curvature(y, eta))
        Xh = X[:, [1, 4, 7]]
        np.testing.assert_allclose(stats["grad"][j], X.T @ (s * train * L.derivative(y, eta)),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(stats["hess.%d" % j], Xh.T @ (h[:, None] * Xh), rtol=1e-12)
        np.testing.assert_allclose(stats["loss_sum"][j], (s * train) @ L.value(y, eta),
                                   rtol=1e-12)
        np.testing.assert_allclose(stats["valid_loss_sum"][j], (s * ~train) @ L.value(y, eta),
                                   rtol=1e-12, atol=1e-14)
        assert stats["train_weight_sum"][j] == pytest.approx(s[train].sum(), rel=1e-13)


def test_dask_blocks_of_consecutive_pieces_share_a_worker():
    from elasticnet_dist.engines.dask_engine import contiguous_placement

    assert contiguous_placement(16, ["a", "b"]) == ["a"] * 8 + ["b"] * 8
    assert contiguous_placement(5, ["a", "b", "c"]) == ["a", "a", "b", "b", "c"]
    assert contiguous_placement(2, ["a", "b", "c"]) == ["a", "b"]
    assert contiguous_placement(3, []) == [None] * 3
    # whole groups of 8 (the merge tree's level-1 nodes) where that costs no balance
    assert contiguous_placement(17, ["a", "b"]) == ["a"] * 8 + ["b"] * 9
    assert contiguous_placement(24, ["a", "b"]) == ["a"] * 12 + ["b"] * 12
    assert contiguous_placement(20, ["a", "b", "c"]) == ["a"] * 7 + ["b"] * 7 + ["c"] * 6


def test_the_embedded_dask_cluster_drops_only_dasks_default_trim_threshold():
    """Dask gives its workers ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's mmap
    threshold too (every temporary above 128 KiB mapped afresh): the embedded cluster
    leaves it out, keeps the rest of the environment (one BLAS thread) and keeps a
    threshold the user chose."""
    from elasticnet_dist.engines.dask_engine import _without_dask_trim

    dask_default = {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}
    assert _without_dask_trim(dask_default) == {"OMP_NUM_THREADS": 1}
    assert dask_default["MALLOC_TRIM_THRESHOLD_"] == 65536  # the config is not changed
    chosen = {"MALLOC_TRIM_THRESHOLD_": 1 << 20}
    assert _without_dask_trim(chosen) == chosen


@pytest.mark.cluster
def test_the_embedded_dask_clusters_workers_allocate_with_glibcs_defaults(monkeypatch):
    """Also when a cluster Dask started earlier in this process left the threshold in
    its environment (Dask sets it there before spawning; children inherit it): it
    is left out while the workers spawn, and put back."""
    import dask

    from elasticnet_dist.engines import make_engine

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    engine = make_engine("dask", n_workers=1)
    try:
        environ = engine.client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                                             os.environ.get("OMP_NUM_THREADS")))
    finally:
        engine.close()
    assert list(environ.values()) == [(None, "1")]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
    # the setting is Dask's again for clusters started by others
    assert dask.config.get("distributed.nanny.pre-spawn-environ")[
        "MALLOC_TRIM_THRESHOLD_"] == 65536
