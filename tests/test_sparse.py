"""Sparse rows (issue 19, point 4): CSR blocks in every kernel, Spark ML vector columns
in tables and in the Spark ML selector, ``scipy.sparse`` input to the estimators; the
same statistics and answers as the same data dense, and memory in the non-zeros."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.errors import ColumnTypeError, InputError, ManifestError
from elasticnet_dist.io.blocks import BlockDecoder
from elasticnet_dist.manifest import build_manifest, check_manifest
from elasticnet_dist.passes import HessianBlock, PassRequest, chunked_block_stats
from elasticnet_dist.sparse import (VECTOR_TYPE, VectorColumn, VectorError, csr_to_vectors,
                                    slot_names, vectors_to_csr)


def sparse_problem(n, p, density, seed, loss="squared"):
    """A CSR matrix with a few informative columns, and its label."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, p, density=density, random_state=rng, format="csr")
    X.data = X.data * 4 - 1  # values of both signs, so means and shifts matter
    w = np.zeros(p)
    w[:5] = [3.0, -2.0, 1.5, 2.0, -1.0]
    eta = np.asarray(X @ w).ravel()
    if loss == "squared":
        return X, eta + 0.1 * rng.standard_normal(n) + 2.0
    if loss == "logistic":
        return X, (rng.random(n) < 1 / (1 + np.exp(-2 * eta))).astype(float)
    return X, rng.poisson(np.exp(0.5 * eta)).astype(float)


# ---- kernels ----------------------------------------------------------------------------

def _requests(p, rng):
    coefs = rng.standard_normal((4, p)) * (rng.random((4, p)) < 0.3)
    shift = rng.standard_normal(p)
    hessians = (HessianBlock(cols=np.array([1, 5, 7]), center=shift),
                HessianBlock(cols=np.array([2, 5, 7, 9]), rows=np.array([7, 9]), point=2))
    return {
        "moments with a shift and Gram matrices by fold": PassRequest(
            loss="poisson", moments=True, shift_x=shift, shift_y=0.7, full_gram=True,
            n_folds=3, by_fold=True),
        "moments and the Gram matrix of the whole table": PassRequest(
            moments=True, shift_x=np.zeros(p), full_gram=True),
        "points holding folds out, with Hessian blocks and AUC histograms": PassRequest(
            loss="logistic", coefs=coefs, intercepts=rng.standard_normal(4),
            hessians=hessians, n_folds=3, holdout=np.array([-1, 0, 1, 2]), auc_bins=64),
        "points on half-samples": PassRequest(
            loss="squared", coefs=coefs, intercepts=np.zeros(4), n_folds=3,
            train_groups=np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], bool)),
    }


@pytest.mark.parametrize("what", ["moments with a shift and Gram matrices by fold",
                                  "moments and the Gram matrix of the whole table",
                                  "points holding folds out, with Hessian blocks and AUC "
                                  "histograms", "points on half-samples"])
def test_a_csr_block_gives_the_statistics_of_the_same_rows_dense(what):
    rng = np.random.default_rng(3)
    n, p = 400, 60
    X = sp.random(n, p, density=0.1, random_state=rng, format="csr")
    D = X.toarray()
    y = rng.poisson(1.5, n).astype(float)
    y_binary = (y > 1).astype(float)
    s, o = rng.random(n) + 0.5, 0.1 * rng.standard_normal(n)
    request = _requests(p, rng)[what]
    label = y_binary if request.loss == "logistic" else y
    offsets = o if request.loss == "poisson" else None
    bounds = np.array([0, 130, 270, 400])
    for rows in (37, None):  # several chunks, and one
        got = chunked_block_stats(X, label, s, request, rows=rows, fold_bounds=bounds, o=offsets)
        want = chunked_block_stats(D, label, s, request, rows=rows, fold_bounds=bounds,
                                   o=offsets)
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-10,
                                       err_msg=key)


# ---- Arrow vectors <-> CSR -------------------------------------------------------------

def test_csr_rows_round_trip_through_spark_ml_vectors():
    X, _ = sparse_problem(50, 30, 0.2, seed=1)
    vectors = csr_to_vectors(X)
    assert vectors.type == VECTOR_TYPE
    back, null_rows = vectors_to_csr(vectors, 30)
    assert not null_rows.any()
    assert (back != X).nnz == 0 and back.has_sorted_indices
    piece = pa.table({"v": vectors}).slice(17, 20).column("v")  # an offset into the buffers
    np.testing.assert_array_equal(vectors_to_csr(piece, 30)[0].toarray(), X[17:37].toarray())


def test_dense_and_null_vectors_decode_as_rows_and_wrong_sizes_are_named():
    rows = [{"type": 0, "size": 4, "indices": [1, 3], "values": [2.0, -1.0]},
            {"type": 1, "size": None, "indices": None, "values": [1.0, 0.0, 5.0, 6.0]},
            None,
            {"type": 0, "size": 4, "indices": [], "values": []}]
    X, null_rows = vectors_to_csr(pa.array(rows, type=VECTOR_TYPE), 4)
    np.testing.assert_array_equal(X.toarray(), [[0, 2, 0, -1], [1, 0, 5, 6], [0] * 4, [0] * 4])
    np.testing.assert_array_equal(null_rows, [False, False, True, False])
    with pytest.raises(VectorError, match="row 0 holds a vector of 4 slots"):
        vectors_to_csr(pa.array(rows, type=VECTOR_TYPE), 5)
    bad = [{"type": 0, "size": 4, "indices": [0], "values": [1.0]},
           {"type": 0, "size": 4, "indices": [7], "values": [1.0]}]
    with pytest.raises(VectorError, match="row 1 holds a vector index outside 0 .. 3"):
        vectors_to_csr(pa.array(bad, type=VECTOR_TYPE), 4)


def _vector_table(X, y):
    return pa.table({"v": csr_to_vectors(X), "y": y})


def test_a_vector_block_summarises_and_cleans_like_the_same_columns_dense():
    """Missing values (stored NaN, a null vector) are counted per slot, dropped or
    imputed as in a dense block; extremes count the implicit zeros."""
    X, y = sparse_problem(40, 12, 0.3, seed=2)
    X = X.tolil()
    X[3, 4] = np.nan
    X[5, 0] = np.inf
    X = X.tocsr()
    vectors = csr_to_vectors(X).to_pylist()
    vectors[7] = None
    sparse_table = pa.table({"v": pa.array(vectors, type=VECTOR_TYPE), "y": y})
    D = X.toarray()
    D[7] = np.nan
    names = slot_names("v", 12)
    dense_table = pa.table({**{n: D[:, j] for j, n in enumerate(names)}, "y": y})
    for policy, fill in (("error", None), ("drop_rows", None),
                         ("impute_mean", tuple(np.linspace(-1, 1, 12)))):
        got = BlockDecoder(names, "y", nan_policy=policy, fill=fill,
                           vector=VectorColumn("v", names)).decode(sparse_table, "piece")
        want = BlockDecoder(names, "y", nan_policy=policy, fill=fill).decode(dense_table, "piece")
        assert sp.issparse(got.X)
        if policy != "error":  # (with "error" the load stops at the summaries' counts)
            np.testing.assert_array_equal(got.X.toarray(), want.X)
        a, b = got.summary, want.summary
        for field in ("nonfinite_x", "finite_count_x", "hi_x", "lo_x"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        np.testing.assert_allclose(a.finite_sum_x, b.finite_sum_x, rtol=1e-12)
        assert (a.n_rows, a.rows_dropped, a.values_imputed) == \
            (b.n_rows, b.rows_dropped, b.values_imputed)
        np.testing.assert_array_equal(a.first_x, np.zeros(12))  # sparse rows are not shifted


def test_a_subset_of_slots_is_decoded_as_those_columns():
    X, y = sparse_problem(30, 10, 0.4, seed=3)
    names = slot_names("v", 10)
    keep = (names[7], names[2], names[3])
    block = BlockDecoder(keep, "y", vector=VectorColumn("v", names)).decode(
        _vector_table(X, y), "piece")
    np.testing.assert_array_equal(block.X.toarray(), X.toarray()[:, [7, 2, 3]])


# ---- estimators on scipy.sparse and vector columns -------------------------------------

@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_a_sparse_fit_equals_the_dense_fit(loss):
    X, y = sparse_problem(600, 80, 0.08, seed=4, loss=loss)
    a = ElasticNet(alpha=0.02, l1_ratio=0.8, loss=loss).fit(X, y)
    b = ElasticNet(alpha=0.02, l1_ratio=0.8, loss=loss).fit(X.toarray(), y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)
    assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-9)
    assert np.count_nonzero(a.coef_) >= 3
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), atol=1e-9)
    np.testing.assert_allclose(a.predict(X.tocsc()), a.predict(X.toarray()), atol=1e-12)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_a_sparse_search_equals_the_dense_search(loss):
    X, y = sparse_problem(500, 60, 0.1, seed=5, loss=loss)
    kw = dict(loss=loss, l1_ratio=[0.5, 1.0], alphas=25, cv=3)
    a = ElasticNetCV(**kw).fit(X, y)
    b = ElasticNetCV(**kw).fit(X.toarray(), y)
    assert (a.alpha_, a.l1_ratio_, a.route_) == (b.alpha_, b.l1_ratio_, b.route_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    assert set(np.flatnonzero(a.coef_)) >= {0, 1}


def test_nan_in_sparse_input_is_named():
    X, y = sparse_problem(50, 8, 0.5, seed=6)
    X = X.tolil()
    X[4, 6] = np.nan
    with pytest.raises(ValueError, match=r"X column 'x6' has 1 NaN and 0 inf values "
                                         r"\(first rows \[4\]\)"):
        ElasticNet(alpha=0.1).fit(X.tocsr(), y)


def test_a_parquet_vector_column_is_searched_and_written_in_the_manifest(tmp_path):
    """A column of Spark ML vectors in Parquet (as Spark writes them): the features are
    its slots; the manifest keeps the column with the selected slots (schema 1.3)."""
    X, y = sparse_problem(400, 50, 0.1, seed=7)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": np.arange(400), "features": csr_to_vectors(X), "y": y}),
                   path)
    kw = dict(l1_ratio=[1.0], alphas=20, cv=3)
    est = ElasticNetCV(**kw).fit(str(path), label="y", vector="features",
                                 exclude=["features_49"], keys=["id"])
    assert list(est.feature_names_in_) == list(slot_names("features", 49))
    dense = ElasticNetCV(**kw).fit(X.toarray()[:, :49], y)
    assert est.alpha_ == pytest.approx(dense.alpha_, rel=1e-12)  # same grid,
    assert est.n_features_in_ == 49                              # (folds hashed by key)
    from elasticnet_dist import config as cfg

    config = cfg.merge(cfg.defaults(), {"input": {"label": "y"}}, "test")
    document = build_manifest(est, config)
    check_manifest(document)
    (vector,) = [c for c in document["reduced_schema"] if c["role"] == "vector"]
    selected = np.flatnonzero(est.coef_)
    assert vector["name"] == "features" and vector["slots"] == selected.tolist()
    assert vector["type"].startswith("struct<type: int8")
    assert sorted(f["slot"] for f in document["selected"]) == selected.tolist()
    reasons = {f["name"]: f["reason"] for f in document["dropped"]}
    assert reasons["features_49"] == "excluded_by_config" and "id" not in reasons
    assert len(document["selected"]) + sum(1 for f in document["dropped"]
                                           if "slot" in f) == 50
    vector["slots"] = vector["slots"][1:]
    with pytest.raises(ManifestError, match="slots of reduced_schema's vector column"):
        check_manifest(document)


def vector_table(folder):
    """Two Parquet files of 300 rows: a key, a column of sparse vectors (40 slots, one
    row's vector null) and a label; the matrix and the label."""
    X, y = sparse_problem(300, 40, 0.15, seed=10)
    vectors = csr_to_vectors(X).to_pylist()
    vectors[5] = None  # a row without a vector: dropped by drop_rows, kept (null) by apply
    folder.mkdir()
    for i, rows in enumerate((slice(0, 150), slice(150, 300))):
        pq.write_table(pa.table({"id": np.arange(300)[rows],
                                 "v": pa.array(vectors[rows], type=VECTOR_TYPE),
                                 "y": y[rows]}), folder / ("part-%d.parquet" % i))
    return X, y


def select_vector(table, out, engine="local"):
    from elasticnet_dist.cli import EXIT_OK, main

    assert main(["select", "--input", str(table), "--label", "y", "--vector", "v", "--keys",
                 "id", "--output", str(out), "--nan-policy", "drop_rows", "--no-report",
                 "--l1-ratios", "1", "--cv", "3", "--engine", engine]) == EXIT_OK
    return json.loads((out / "manifest.json").read_text())


def test_the_stage_selects_slots_of_a_vector_column_and_apply_slices_them(tmp_path):
    """``select --vector``: the manifest keeps the column with the selected slots;
    ``apply`` writes each row's vector cut to those slots (as ``VectorSlicer``), with
    the column's Arrow type; ``validate`` accepts the table."""
    from elasticnet_dist.cli import EXIT_OK, main

    table, out = tmp_path / "t", tmp_path / "out"
    X, _ = vector_table(table)
    document = select_vector(table, out)
    (vector,) = [c for c in document["reduced_schema"] if c["role"] == "vector"]
    assert document["config"]["input"]["vector"] == "v"
    assert {0, 1, 2} <= set(vector["slots"]) and len(vector["slots"]) < 40
    assert main(["validate", str(out / "manifest.json"), "--input", str(table)]) == EXIT_OK
    reduced = tmp_path / "reduced"
    assert main(["apply", "--manifest", str(out / "manifest.json"), "--input", str(table),
                 "--output", str(reduced), "--engine", "local"]) == EXIT_OK
    written = pq.read_table(reduced)
    assert written.column_names == [c["name"] for c in document["reduced_schema"]]
    assert written.schema.field("v").type == pq.read_schema(table / "part-0.parquet").field(
        "v").type
    cut, null_rows = vectors_to_csr(written.column("v"), len(vector["slots"]))
    np.testing.assert_array_equal(np.flatnonzero(null_rows), [5])
    keep = np.ones(300, bool)
    keep[5] = False
    np.testing.assert_array_equal(cut.toarray()[keep], X.toarray()[:, vector["slots"]][keep])


def test_a_column_that_is_not_vectors_or_has_bad_rows_is_named(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"v": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 2.0]}), path)
    with pytest.raises(ColumnTypeError, match="vector column 'v' .* must be a Spark ML vector"):
        ElasticNet(alpha=0.1).fit(str(path), label="y", vector="v")
    rows = [{"type": 0, "size": 3, "indices": [0], "values": [1.0]},
            {"type": 0, "size": 3, "indices": [1], "values": [2.0]},
            {"type": 0, "size": 4, "indices": [3], "values": [1.0]}]
    pq.write_table(pa.table({"v": pa.array(rows, type=VECTOR_TYPE), "y": [0.0, 1.0, 2.0]}),
                   path)
    with pytest.raises(InputError, match=r"vector column 'v' of .*t.parquet: row 2 holds a "
                                         r"vector of 4 slots"):
        ElasticNet(alpha=0.1).fit(str(path), label="y", vector="v")


def test_a_table_too_wide_to_densify_is_searched_within_4_gib(tmp_path):
    """5,000 rows x 500,000 columns (20 GB dense) at 4 values a row: a search in a
    process limited to 4 GiB of address space (``setrlimit``; the libraries' mappings
    take about half of it)."""
    script = textwrap.dedent("""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
        import numpy as np, scipy.sparse as sp
        from elasticnet_dist import ElasticNetCV
        n, p = 5000, 500_000
        rng = np.random.default_rng(0)
        rows = np.repeat(np.arange(n), 4)
        cols = np.concatenate([rng.integers(0, 5, (n, 2)), rng.integers(0, p, (n, 2))],
                              axis=1).ravel()
        X = sp.csr_matrix((rng.standard_normal(4 * n), (rows, cols)), shape=(n, p))
        y = np.asarray(X[:, :5] @ np.array([3.0, -2, 1.5, 2, -1])).ravel()
        y += 0.1 * rng.standard_normal(n)
        est = ElasticNetCV(l1_ratio=[1.0], alphas=15, cv=3).fit(X, y)
        print(json.dumps({"selected": np.flatnonzero(est.coef_).tolist(), "route": est.route_,
                          "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["route"] == "passes"
    assert set(range(5)) <= set(out["selected"]), out


# ---- engines ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dask", "spark"])
def test_sparse_input_on_a_cluster_equals_the_local_answer(name, request):
    handle = request.getfixturevalue("dask_client" if name == "dask" else "spark")
    X, y = sparse_problem(300, 40, 0.1, seed=8, loss="logistic")
    kw = dict(loss="logistic", l1_ratio=[1.0], alphas=15, cv=3)
    local = ElasticNetCV(**kw).fit(X, y)
    remote = ElasticNetCV(**kw, engine=name, cluster=handle).fit(X, y)
    assert remote.alpha_ == local.alpha_
    np.testing.assert_allclose(remote.coef_, local.coef_, atol=1e-10)


@pytest.mark.parametrize("name", ["dask", "spark"])
def test_the_stage_on_a_cluster_selects_the_slots_it_selects_locally(name, request, tmp_path):
    request.getfixturevalue("dask_client" if name == "dask" else "spark")
    table = tmp_path / "t"
    vector_table(table)
    local = select_vector(table, tmp_path / "local")
    remote = select_vector(table, tmp_path / name, engine=name)
    assert remote["reduced_schema"] == local["reduced_schema"]
    np.testing.assert_allclose([f["coefficient"] for f in remote["selected"]],
                               [f["coefficient"] for f in local["selected"]], rtol=1e-9)


def test_the_spark_selector_reads_sparse_vectors_as_they_are(spark):
    """``HashingTF`` vectors go to the executors as vectors (CSR blocks there), and the
    selection equals that of the same slots given as numeric columns."""
    from pyspark.ml.feature import HashingTF
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from elasticnet_dist.spark_ml import ElasticNetSelector

    rng = np.random.default_rng(9)
    words = ["w%d" % i for i in range(120)]
    rows = []
    for i in range(240):
        doc = [str(w) for w in rng.choice(words, size=8)]
        rows.append((i, doc, float(("w1" in doc) or ("w2" in doc))))
    frame = spark.createDataFrame(rows, ["id", "words", "label"])
    frame = HashingTF(inputCol="words", outputCol="features", numFeatures=256).transform(frame)
    assert type(frame.first().features).__name__ == "SparseVector"
    kw = dict(labelCol="label", family="binomial", elasticNetParams=[1.0], numFolds=3,
              numAlphas=20, keyCols=["id"])
    model = ElasticNetSelector(featuresCol="features", outputCol="selected", **kw).fit(frame)
    names = ["features_%d" % i for i in range(256)]
    arr = vector_to_array("features")
    columns = frame.select("id", "label", *[arr[i].alias(n) for i, n in enumerate(names)])
    dense = ElasticNetSelector(featuresCols=names, **kw).fit(columns)
    assert model.selectedFeatures == dense.selectedFeatures and model.selectedFeatures
    check_manifest(model.manifest)
    (vector,) = [c for c in model.manifest["reduced_schema"] if c["role"] == "vector"]
    assert vector["slots"] == model.selectedIndices
    out = model.transform(frame).select("selected").first().selected
    assert out.size == len(model.selectedIndices)
    assert frame.select(F.col("features")).first() is not None


# ---- the route's cost model ---------------------------------------------------------------

def test_the_route_model_prices_sparse_rows_by_their_stored_values():
    """A pass over CSR rows costs its stored values, not n x p: at 20,000 x 4,000 with
    1% stored the pass route's estimate falls by more than 2x, and the one-pass Gram
    route, measured faster there (65-72 s against 160-180 s for the 5-fold, 3-l1_ratio
    search), is still chosen."""
    from elasticnet_dist.solvers.routes import Workload, choose_route, route_seconds

    dense = Workload(20_000, 4_000, n_folds=5, n_problems=18, cores=2)
    sparse = Workload(20_000, 4_000, n_folds=5, n_problems=18, cores=2, density=0.01)
    (gram_d, passes_d), (gram_s, passes_s) = route_seconds(dense), route_seconds(sparse)
    assert passes_s * 2 < passes_d and gram_s < gram_d
    assert choose_route("squared", sparse, 4096, quiet=True) == "gram"
    denser = Workload(20_000, 4_000, n_folds=5, n_problems=18, cores=2, density=0.2)
    assert route_seconds(denser)[1] > passes_d  # scipy's products lose to BLAS when dense


def test_sources_know_the_share_of_values_their_sparse_rows_store():
    from elasticnet_dist import _validation as v
    from elasticnet_dist.engines.local import LocalEngine
    from elasticnet_dist.loading import load_table
    from elasticnet_dist.sources import EngineSource, InMemorySource

    X, y = sparse_problem(200, 50, 0.1, seed=11)
    share = X.nnz / (200 * 50)
    assert InMemorySource(X, y).density == pytest.approx(share)
    assert InMemorySource(X.toarray(), y).density is None
    engine = LocalEngine()
    table, columns = v.arrays_as_table(X, y, None, ["x%d" % j for j in range(50)])
    load_table(table, engine, label=v.LABEL, vector=columns["vector"], n_folds=3)
    assert EngineSource(engine).density == pytest.approx(share)


# ---- slot names from Spark's ML attributes ---------------------------------------------------

def test_slots_take_the_names_spark_wrote_into_the_parquet_metadata(tmp_path):
    """A Parquet file Spark wrote keeps each column's metadata (its ML attributes among
    them) under one key; a vector's slots take those names, the rest ``<col>_<i>``."""
    from elasticnet_dist.sparse import SPARK_ROW_METADATA

    X, y = sparse_problem(120, 6, 0.5, seed=12)
    attrs = {"num_attrs": 6, "attrs": {"numeric": [{"idx": 0, "name": "age"},
                                                  {"idx": 2, "name": "income"}]}}
    spark_schema = {"type": "struct", "fields": [
        {"name": "v", "type": "vector", "nullable": True, "metadata": {"ml_attr": attrs}},
        {"name": "y", "type": "double", "nullable": True, "metadata": {}}]}
    table = pa.table({"v": csr_to_vectors(X), "y": y}).replace_schema_metadata(
        {SPARK_ROW_METADATA: json.dumps(spark_schema)})
    pq.write_table(table, tmp_path / "t.parquet")
    est = ElasticNet(alpha=0.01).fit(str(tmp_path / "t.parquet"), label="y", vector="v")
    assert list(est.feature_names_in_) == ["age", "v_1", "income", "v_3", "v_4", "v_5"]


def test_a_vector_assembled_and_written_by_spark_keeps_its_column_names(spark, tmp_path):
    from pyspark.ml.feature import VectorAssembler

    rng = np.random.default_rng(13)
    data = rng.standard_normal((200, 3))
    frame = spark.createDataFrame([(float(a), float(b), float(c), float(a - 2 * c))
                                   for a, b, c in data], ["height", "weight", "age", "y"])
    assembled = VectorAssembler(inputCols=["height", "weight", "age"],
                                outputCol="features").transform(frame)
    path = str(tmp_path / "assembled")
    assembled.select("features", "y").write.parquet(path)
    for table in (path, assembled.select("features", "y")):  # its files, and the frame
        est = ElasticNet(alpha=0.01, engine="spark", cluster=spark).fit(
            table, label="y", vector="features")
        assert list(est.feature_names_in_) == ["height", "weight", "age"]
        assert est.coef_[0] > 0.5 and est.coef_[2] < -1.0
