"""Table input on the local engine: every input form, column roles, and every
validation error of the engines issue (named column, count and file)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist import ElasticNet
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.engines import LocalEngine
from elasticnet_dist.errors import (BadValuesError, ColumnTypeError, EmptyTableError,
                                    InputError, MissingColumnError, SchemaDriftError,
                                    UnreadableFileError)
from elasticnet_dist.loading import load_table

ALPHA, L1 = 0.05, 0.5


@pytest.fixture(scope="module")
def wide():
    return make_wide_table(400, 30, n_informative=6, seed=3)


@pytest.fixture(scope="module")
def table_dir(wide, tmp_path_factory):
    return write_parquet(wide, str(tmp_path_factory.mktemp("wide") / "t"), n_files=5)


def reference(wide, **kw):
    return ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10, **kw).fit(wide.X, wide.y)


def fit_table(source, **kw):
    fit_kw = {k: kw.pop(k) for k in list(kw) if k in ("label", "weight", "features",
                                                      "exclude", "keys", "storage_options",
                                                      "max_levels")}
    fit_kw.setdefault("label", "y")
    return ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10, **kw).fit(source, **fit_kw)


def frame(wide, **extra):
    df = pd.DataFrame(wide.X, columns=wide.names)
    df["y"] = wide.y
    for k, v in extra.items():
        df[k] = v
    return df


# ---- input forms ----------------------------------------------------------------------
def test_every_input_form_gives_the_array_fit(wide, table_dir, tmp_path):
    ref = reference(wide)
    files = sorted(os.path.join(table_dir, f) for f in os.listdir(table_dir))
    single = str(tmp_path / "one.parquet")
    pq.write_table(pa.Table.from_pandas(frame(wide), preserve_index=False), single)
    sources = {
        "directory": table_dir, "file": single, "glob": os.path.join(table_dir, "part-*.parquet"),
        "list": files, "file URL": "file://" + table_dir, "pandas": frame(wide),
        "arrow": pa.Table.from_pandas(frame(wide), preserve_index=False),
    }
    for what, source in sources.items():
        est = fit_table(source)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12 *
                                   np.abs(ref.coef_).max(), err_msg=what)
        assert list(est.feature_names_in_) == wide.names, what
        assert est.fit_report_["rows"] == 400, what
    assert fit_table(table_dir).fit_report_["partitions"] == 5


def test_memory_url_and_hive_partitions(wide):
    import fsspec

    fs = fsspec.filesystem("memory")
    df = frame(wide, region=np.where(np.arange(400) < 200, 1, 2))
    for r in (1, 2):
        part = df[df.region == r].drop(columns="region")
        with fs.open("/hive/region=%d/part-0.parquet" % r, "wb") as f:
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), f)
    est = fit_table("memory://hive", keys=["region"])
    ref = reference(wide)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert "region" not in est.feature_names_in_ and est.fit_report_["partitions"] == 2
    # the hive column can be a feature too: it is read from the folder names
    with_region = fit_table("memory://hive")
    assert "region" in with_region.feature_names_in_


def test_feature_globs_exclude_keys_and_dropped_reasons(wide, tmp_path):
    df = frame(wide, id=np.arange(400), city=["a", "b"] * 200, w=np.ones(400))
    df["empty"] = None
    path = str(tmp_path / "t.parquet")
    df.to_parquet(path)
    est = fit_table(path, keys=["id"], weight="w")  # a string column is categorical
    assert list(est.feature_names_in_) == wide.names + ["city=a", "city=b"]
    assert est.dropped_features_ == {"empty": "all_null"}
    est = fit_table(path, keys=["id"], weight="w", max_levels=0)
    assert list(est.feature_names_in_) == wide.names
    assert est.dropped_features_ == {"city": "non_numeric", "empty": "all_null"}
    est = fit_table(path, features=["f000[0-4]", "f0010"], exclude=["f0002"])
    assert list(est.feature_names_in_) == ["f0000", "f0001", "f0003", "f0004", "f0010"]
    assert est.dropped_features_["f0002"] == "excluded_by_config"
    assert est.dropped_features_["id"] == "excluded_by_config"
    assert len(est.dropped_features_) == len(df.columns) - 1 - 5


def test_all_null_float_column_is_dropped_after_loading(wide, tmp_path):
    df = frame(wide)
    df["hole"] = np.nan  # a float column of nulls: only the data says it is empty
    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).set_column(
        df.columns.get_loc("hole"), "hole", pa.nulls(400, pa.float64())), path)
    est = fit_table(path)
    assert est.dropped_features_ == {"hole": "all_null"}
    np.testing.assert_allclose(est.coef_, reference(wide).coef_, rtol=1e-9, atol=1e-12)


def test_projection_reads_only_the_needed_columns(wide, tmp_path):
    df = frame(wide, blob=["x" * 50] * 400)
    path = str(tmp_path / "t.parquet")
    df.to_parquet(path)
    engine = LocalEngine()
    loaded = load_table(path, engine, label="y", features=["f0001", "f0003"])
    assert loaded.decoder.columns == ["f0001", "f0003", "y"]
    assert loaded.table.pieces[0].read(loaded.decoder.columns).column_names == ["f0001", "f0003",
                                                                                 "y"]
    # two features and the label; unit weights are not stored
    assert engine.bytes_cached == 400 * (2 + 1) * 8


def test_partition_invariance_local(wide, tmp_path):
    ref = fit_table(write_parquet(wide, str(tmp_path / "p1"), n_files=1))
    for n in (7, 64):
        est = fit_table(write_parquet(wide, str(tmp_path / ("p%d" % n)), n_files=n))
        assert est.fit_report_["partitions"] == n
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
        assert (est.coef_ != 0).tolist() == (ref.coef_ != 0).tolist()


def test_large_files_are_cut_at_row_groups(wide, tmp_path, monkeypatch):
    import elasticnet_dist.io.table as table_mod

    path = str(tmp_path / "t.parquet")
    pq.write_table(pa.Table.from_pandas(frame(wide), preserve_index=False), path,
                   row_group_size=50)
    monkeypatch.setattr(table_mod, "PIECE_BYTES", 100 * 31 * 8)  # about 100 rows a piece
    est = fit_table(path)
    assert est.fit_report_["partitions"] == 4
    np.testing.assert_allclose(est.coef_, reference(wide).coef_, rtol=1e-9, atol=1e-12)


def test_float32_blocks_halve_the_cache_and_sum_in_float64(wide, table_dir):
    est = fit_table(table_dir, dtype="float32")
    X32 = wide.X.astype(np.float32).astype(np.float64)
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10).fit(X32, wide.y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    full = fit_table(table_dir)
    raw = 400 * 31 * 8  # the table's numeric bytes: 30 features and the label
    assert full.fit_report_["bytes_cached"] <= 1.2 * raw
    assert est.fit_report_["bytes_cached"] < 0.6 * full.fit_report_["bytes_cached"]


# ---- missing values ---------------------------------------------------------------------
def holey(wide, tmp_path):
    X = wide.X.copy()
    X[[5, 17, 300], 4] = np.nan
    X[250, 9] = np.inf
    df = pd.DataFrame(X, columns=wide.names)
    df["y"] = wide.y
    return write_parquet_frame(df, tmp_path, 4), X


def write_parquet_frame(df, tmp_path, n_files, name="h"):
    root = tmp_path / name
    root.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), n_files)):
        df.iloc[part].to_parquet(root / ("part-%d.parquet" % i), index=False)
    return str(root)


def test_nan_in_a_feature_names_column_count_and_file(wide, tmp_path):
    path, _ = holey(wide, tmp_path)
    with pytest.raises(BadValuesError, match=r"2 feature column\(s\).*'f0004' \(3\), "
                       r"'f0009' \(1\).*part-0\.parquet.*nan_policy"):
        fit_table(path)


def test_nan_policies_drop_rows_and_impute_mean(wide, tmp_path):
    path, X = holey(wide, tmp_path)
    keep = np.isfinite(X).all(axis=1)
    est = fit_table(path, nan_policy="drop_rows")
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10).fit(X[keep], wide.y[keep])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert est.fit_report_["rows_dropped"] == 4 and est.fit_report_["rows"] == 396

    est = fit_table(path, nan_policy="impute_mean")
    Xi = X.copy()
    for j in (4, 9):
        bad = ~np.isfinite(Xi[:, j])
        Xi[bad, j] = Xi[~bad, j].mean()
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10).fit(Xi, wide.y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert est.fit_report_["values_imputed"] == 4 and est.fit_report_["nan_policy"] == \
        "impute_mean"


def test_missing_label_values(wide, tmp_path):
    df = frame(wide)
    df.loc[[3, 399], "y"] = np.nan
    path = write_parquet_frame(df, tmp_path, 2)
    with pytest.raises(BadValuesError, match=r"label column 'y' has 2 missing.*part-0"):
        fit_table(path)
    assert fit_table(path, nan_policy="drop_rows").fit_report_["rows"] == 398


# ---- column and file errors ---------------------------------------------------------------
def test_missing_columns_are_named_with_suggestions(table_dir):
    with pytest.raises(MissingColumnError, match=r"label column 'Y' is not in .*did you mean "
                       r"'y'"):
        fit_table(table_dir, label="Y")
    with pytest.raises(MissingColumnError, match=r"weight column 'wt'"):
        fit_table(table_dir, weight="wt")
    with pytest.raises(MissingColumnError, match=r"feature column 'f9999'"):
        fit_table(table_dir, features=["f0001", "f9999"])
    with pytest.raises(MissingColumnError, match=r"feature pattern 'g\*' matches no column"):
        fit_table(table_dir, features=["g*"])
    with pytest.raises(MissingColumnError, match=r"key column 'id'"):
        fit_table(table_dir, keys=["id"])


def test_label_type_and_values(wide, tmp_path):
    df = frame(wide, name=["a"] * 400, two=np.r_[np.zeros(200), 2 * np.ones(200)],
               ones=np.ones(400), flag=np.arange(400) % 2 == 0)
    path = str(tmp_path / "t.parquet")
    df.to_parquet(path)
    with pytest.raises(ColumnTypeError, match=r"label column 'name' .* has type (large_)?string"):
        fit_table(path, label="name")
    with pytest.raises(BadValuesError,
                       match=r"'two' must hold 0 and 1.*found 2\.0 in .*t\.parquet"):
        fit_table(path, label="two", loss="logistic", exclude=["name"])
    with pytest.raises(BadValuesError, match=r"'ones' holds one class only \(400 rows of 1"):
        fit_table(path, label="ones", loss="logistic")
    est = fit_table(path, label="flag", loss="logistic", exclude=["y", "two", "ones"])
    assert est.classes_.tolist() == [0, 1] and est.converged_


def test_negative_or_missing_weights(wide, tmp_path):
    w = np.ones(400)
    w[7] = -1.0
    path = str(tmp_path / "t.parquet")
    frame(wide, w=w).to_parquet(path)
    with pytest.raises(BadValuesError, match=r"weight column 'w' has 1 negative values, first in "
                       r".*t\.parquet"):
        fit_table(path, weight="w")


def test_weights_match_sample_weight(wide, tmp_path):
    w = np.random.default_rng(0).uniform(0, 3, 400)
    path = str(tmp_path / "t.parquet")
    frame(wide, w=w).to_parquet(path)
    est = fit_table(path, weight="w")
    ref = ElasticNet(alpha=ALPHA, l1_ratio=L1, tol=1e-10).fit(wide.X, wide.y, sample_weight=w)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)


def test_type_drift_between_files(wide, tmp_path):
    root = tmp_path / "drift"
    root.mkdir()
    df = frame(wide)
    df.iloc[:200].to_parquet(root / "a.parquet", index=False)
    later = df.iloc[200:].copy()
    later["f0003"] = later["f0003"].astype(str)
    later.to_parquet(root / "b.parquet", index=False)
    with pytest.raises(SchemaDriftError, match=r"'f0003' has type (large_)?string in file "
                       r".*b\.parquet but double in file .*a\.parquet"):
        fit_table(str(root))
    later.drop(columns="f0003").to_parquet(root / "b.parquet", index=False)
    with pytest.raises(SchemaDriftError, match=r"'f0003' is missing from file .*b\.parquet"):
        fit_table(str(root))


def test_corrupt_unreadable_and_empty_inputs(wide, tmp_path, table_dir):
    root = tmp_path / "bad"
    root.mkdir()
    frame(wide).iloc[:100].to_parquet(root / "good.parquet", index=False)
    (root / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableFileError, match=r"broken\.parquet"):
        fit_table(str(root))
    with pytest.raises(UnreadableFileError, match=r"does not exist"):
        fit_table(str(tmp_path / "nowhere"))
    with pytest.raises(UnreadableFileError, match=r"no file matches"):
        fit_table(str(tmp_path / "nowhere" / "*.parquet"))
    empty = str(tmp_path / "empty.parquet")
    frame(wide).iloc[:0].to_parquet(empty, index=False)
    with pytest.raises(EmptyTableError, match=r"empty\.parquet has no rows"):
        fit_table(empty)
    only_text = str(tmp_path / "text.parquet")
    pd.DataFrame({"y": [1.0, 2.0], "a": ["x", "y"]}).to_parquet(only_text)
    with pytest.raises(InputError, match=r"no numeric feature column .*non_numeric"):
        fit_table(only_text, max_levels=0)


def test_option_errors(table_dir):
    with pytest.raises(ValueError, match=r"nan_policy='skip' is not supported"):
        fit_table(table_dir, nan_policy="skip")
    with pytest.raises(ValueError, match=r"dtype='float16' is not supported"):
        fit_table(table_dir, dtype="float16")
    with pytest.raises(ValueError, match=r"engine='ray' is not supported"):
        fit_table(table_dir, engine="ray")
    with pytest.raises(ValueError, match=r"penalty_factor names 1 column\(s\) that are not "
                       r"features: \['nope'\]"):
        fit_table(table_dir, penalty_factor={"nope": 0.0})
    with pytest.raises(ValueError, match=r"label="):
        ElasticNet().fit(table_dir)


def test_penalty_factor_by_name(wide, table_dir):
    est = fit_table(table_dir, penalty_factor={"f0002": 0.0})
    factors = np.ones(30)
    factors[2] = 0.0
    ref = reference(wide, penalty_factor=factors)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert est.coef_[2] != 0


def test_predict_on_the_table_frame(wide, table_dir):
    est = fit_table(table_dir)
    df = frame(wide, other=np.zeros(400))
    np.testing.assert_allclose(est.predict(df), wide.X @ est.coef_ + est.intercept_)


def test_a_missing_engine_extra_says_what_to_install(monkeypatch, table_dir):
    import sys

    monkeypatch.setitem(sys.modules, "elasticnet_dist.engines.dask_engine", None)
    with pytest.raises(ImportError, match=r"pip install 'elasticnet_dist\[dask\]'"):
        fit_table(table_dir, engine="dask")


@pytest.mark.parametrize("n_folds", [0, 5])
def test_a_wide_block_holds_its_own_size_and_no_more(n_folds, tmp_path):
    """A block with fewer rows than columns is stored column-major; nothing else of the
    read (the row-major copy, the rows before sorting by fold) may stay alive with it:
    a view kept in its summary once doubled a wide table's memory (20,000 x 20,000:
    7.3 GB held for 3.2 GB of blocks). NumPy's array memory is traced (its own
    tracemalloc domain: Python objects and Arrow's buffers are not counted), so this
    counts the arrays decoding left alive."""
    import gc
    import tracemalloc

    # wide blocks (75 rows, 3,000 columns), each with its summary's few p-vectors
    t = make_wide_table(150, 3_000, n_informative=5, seed=8)
    path = write_parquet(t, str(tmp_path / "t"), n_files=2)
    engine = LocalEngine()
    arrays = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(arrays)
        load_table(path, engine, label="y", n_folds=n_folds)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(arrays)
    finally:
        tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    x_bytes = sum(b.X.nbytes for b in engine._blocks)
    assert all(b.X.flags.f_contiguous for b in engine._blocks)
    assert x_bytes == 150 * 3_000 * 8
    assert held < 1.25 * x_bytes, (held, x_bytes)
