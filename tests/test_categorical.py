"""Categorical columns (issue 19, point 3): string columns with at most ``max_levels``
levels become one-hot features penalised as one group (the group lasso's ``sqrt(m)``
weight with the elastic net's ridge part), selected or dropped whole, on every engine,
through the estimators, the stage and the Spark ML selector; manifest 1.4."""
from __future__ import annotations

import functools
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.errors import ColumnTypeError
from elasticnet_dist.io.blocks import BlockDecoder
from elasticnet_dist.io.categorical import CategoricalColumn, one_hot, unseen_levels
from elasticnet_dist.manifest import SCHEMA_VERSION, check_manifest
from elasticnet_dist.penalty import build_penalty
from elasticnet_dist.solvers import fit_elastic_net
from elasticnet_dist.sources import InMemorySource

LEVELS = {"country": ["DE", "FR", "JP", "US"], "plan": ["a", "b", "c"]}


def grouped_problem(n, seed, loss="squared"):
    """Numeric columns x0..x5, two one-hot blocks (country: 4 levels, plan: 3), the
    label moved by x0, x1 and country only; ``groups`` numbers the blocks."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 13)) * [1, 3, 0.5, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    country = rng.integers(0, 4, n)
    plan = rng.integers(0, 3, n)
    X[:, 6:10] = np.eye(4)[country]
    X[:, 10:13] = np.eye(3)[plan]
    eta = X[:, 0] - 0.5 * X[:, 1] + np.array([0.0, 1.5, -0.3, -1.0])[country]
    if loss == "squared":
        y = eta + rng.standard_normal(n)
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    groups = np.array([-1] * 6 + [0] * 4 + [1] * 3)
    return X, y, groups, country, plan


def reference_fit(X, y, groups, alpha, l1_ratio, loss, standardize=True, iters=40000):
    """The same objective minimised by plain FISTA in the test (intercept included):
    the loss plus alpha sum_G (l1_ratio sqrt(m_G) ||k w_G|| + (1 - l1_ratio)/2 ||k w_G||^2),
    k the standard deviations when standardizing (groups of one: |k w_j|)."""
    n, p = X.shape
    mean = X.mean(0)
    k = X.std(0) if standardize else np.ones(p)
    Z = (X - mean) / k
    sizes = np.array([np.sum(groups == g) if g >= 0 else 1 for g in groups])
    a, c = alpha * l1_ratio * np.sqrt(sizes), alpha * (1 - l1_ratio)
    A = np.hstack([np.ones((n, 1)), Z])
    lip = np.linalg.eigvalsh(A.T @ A / n)[-1] * (1.0 if loss == "squared" else 0.25) + c

    def grad(v):
        eta = A @ v
        r = eta - y if loss == "squared" else 1 / (1 + np.exp(-eta)) - y
        return A.T @ r / n

    def prox(v, t):
        u = v[1:]
        size = np.abs(u)
        for g in np.unique(groups[groups >= 0]):
            size[groups == g] = np.linalg.norm(u[groups == g])
        shrink = np.maximum(1 - t * a / np.maximum(size, 1e-300), 0) / (1 + t * c)
        return np.concatenate([v[:1], u * shrink])

    x = z = np.zeros(p + 1)
    t = 1.0
    for _ in range(iters):
        new = prox(z - grad(z) / lip, 1 / lip)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = new + (t - 1) / t_new * (new - x)
        x, t = new, t_new
    return x[1:] / k


@functools.lru_cache(maxsize=None)
def reference_case(loss, l1_ratio):
    """(X, y, groups, alpha, the reference solution), computed once for both solvers."""
    X, y, groups, *_ = grouped_problem(300, seed=1, loss=loss)
    alpha = 0.08 if loss == "squared" else 0.02
    return X, y, groups, alpha, reference_fit(X, y, groups, alpha, l1_ratio, loss)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("solver", ["newton", "fista"])
def test_the_group_penalty_solves_the_group_elastic_net(loss, l1_ratio, solver):
    X, y, groups, alpha, expected = reference_case(loss, l1_ratio)
    fit = fit_elastic_net(InMemorySource(X, y, groups=groups), loss=loss, alpha=alpha,
                          l1_ratio=l1_ratio, solver=solver, tol=1e-12, max_iter=5000)
    assert fit.result.converged
    np.testing.assert_allclose(fit.coef, expected, atol=2e-6)
    for g in (0, 1):  # a group is in or out whole
        members = fit.coef[groups == g]
        assert np.all(members != 0) or np.all(members == 0)
    assert np.all(fit.coef[6:10] != 0) and np.all(fit.coef[10:13] == 0)


def test_without_standardize_a_group_is_penalised_on_its_coefficients():
    X, y, groups, *_ = grouped_problem(300, seed=2)
    X[:, 6:10] *= 3.0  # a scaled block: only its own coefficients' norm counts
    for solver in ("newton", "gram"):
        fit = fit_elastic_net(InMemorySource(X, y, groups=groups), alpha=0.05, l1_ratio=0.7,
                              standardize=False, solver=solver, tol=1e-12)
        expected = reference_fit(X, y, groups, 0.05, 0.7, "squared", standardize=False)
        np.testing.assert_allclose(fit.coef, expected, atol=2e-6)


def test_groups_of_one_are_the_elastic_net():
    X, y, *_ = grouped_problem(200, seed=3)
    plain = fit_elastic_net(InMemorySource(X, y), alpha=0.05, l1_ratio=0.8, tol=1e-12)
    single = fit_elastic_net(InMemorySource(X, y, groups=np.arange(13)), alpha=0.05,
                             l1_ratio=0.8, tol=1e-12)
    np.testing.assert_allclose(single.coef, plain.coef, atol=1e-9)


def test_the_group_penalty_value_prox_and_gap_pieces():
    groups = np.array([-1, 0, 0, 0, -1, 1, 1])
    pen = build_penalty(0.5, 0.6, np.ones(7), np.ones(7), True, np.zeros(7, bool), groups)
    u = np.array([1.0, 3.0, 0.0, -4.0, 0.0, 0.0, 0.0])
    a3, a2 = 0.3 * np.sqrt(3), 0.3 * np.sqrt(2)
    assert pen.l1[1] == pytest.approx(a3) and pen.l1[5] == pytest.approx(a2)
    assert pen.value(u) == pytest.approx(0.3 * 1 + a3 * 5 + 0.5 * 0.2 * (1 + 9 + 16))
    z = np.array([1.0, 3.0, 0.0, -4.0, 0.1, 0.01, -0.01])
    out = pen.prox(z, 1.0)  # block soft-threshold: shrink the norm by a, then the ridge
    np.testing.assert_allclose(out[1:4], z[1:4] * (1 - a3 / 5) / 1.2)
    assert np.all(out[5:7] == 0) and out[4] == 0
    assert pen.magnitude(z)[5] == pytest.approx(np.sqrt(2) * 0.01)
    # the conjugate of a group is counted once, not per member
    q = np.array([0.0, 3.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    assert pen.conjugate(q) == pytest.approx((5 - a3) ** 2 / (2 * 0.2))
    # a constant level (no weight of its own, held at 0) changes neither the group's
    # weight nor its count: a CV fold's training rows may lack a level
    fixed = np.zeros(7, bool)
    fixed[2] = True
    pen = build_penalty(0.5, 0.6, np.ones(7), np.ones(7), True, fixed, groups)
    assert pen.l1[2] == 0 and pen.l1[1] == pytest.approx(a3)
    assert pen.value(u) == pytest.approx(0.3 * 1 + a3 * 5 + 0.5 * 0.2 * (1 + 9 + 16))
    assert pen.conjugate(q) == pytest.approx((5 - a3) ** 2 / (2 * 0.2))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_alpha_max_and_the_path_enter_groups_whole(loss):
    """At alpha_max every group is out; along a CV path a group's levels are all zero
    or all non-zero at every alpha."""
    X, y, groups, country, plan = grouped_problem(400, seed=4, loss=loss)
    table = category_table(X, y, country, plan)
    est = ElasticNetCV(loss=loss, l1_ratio=[0.5, 1.0], alphas=30, cv=3).fit(table, label="y")
    assert est.converged_
    names = list(est.feature_names_in_)
    assert names[-7:] == ["country=%s" % v for v in LEVELS["country"]] + \
        ["plan=%s" % v for v in LEVELS["plan"]]
    for path in est.coef_path_:   # (l1_ratios, features, alphas)
        country_path = path[6:10]
        assert np.all((country_path != 0).all(0) | (country_path == 0).all(0))
        assert np.all(path[:, 0] == 0)  # alpha_max: nothing in
    assert np.all(est.coef_[6:10] != 0)
    assert [c.name for c in est.categorical_columns_] == ["country", "plan"]


# ---- decoding -------------------------------------------------------------------------------

def category_table(X, y, country, plan, **extra):
    cols = {"x%d" % j: X[:, j] for j in range(6)}
    cols["country"] = pa.array([LEVELS["country"][i] for i in country])
    cols["plan"] = pa.array([LEVELS["plan"][i] for i in plan]).dictionary_encode()
    cols.update(extra)
    cols["y"] = y
    return pa.table(cols)


def test_one_hot_marks_nulls_missing_and_unseen_values_as_no_level():
    column = pa.chunked_array([pa.array(["b", None, "a"]), pa.array(["z", "b"])])
    hot = one_hot(column, ("a", "b"), np.float64)
    np.testing.assert_array_equal(hot[[0, 2, 3, 4]], [[0, 1], [1, 0], [0, 0], [0, 1]])
    assert np.isnan(hot[1]).all()
    assert unseen_levels(column, ("a", "b")) == (1, ["z"])
    dictionary = pa.array(["b", "a", None, "b"]).dictionary_encode()
    np.testing.assert_array_equal(one_hot(dictionary, ("a", "b"), np.float32)[[0, 1, 3]],
                                  [[0, 1], [1, 0], [0, 1]])


@pytest.mark.parametrize("policy", ["drop_rows", "impute_mean"])
def test_a_null_category_is_a_missing_value_of_every_level(policy):
    X, y, groups, country, plan = grouped_problem(200, seed=5)
    values = np.array([LEVELS["country"][i] for i in country], dtype=object)
    values[[3, 17]] = None
    table = category_table(X, y, country, plan)
    table = table.set_column(table.schema.get_field_index("country"), "country",
                             pa.array(list(values)))
    est = ElasticNet(alpha=0.05, nan_policy=policy).fit(table, label="y")
    ok = np.ones(200, bool)
    ok[[3, 17]] = False
    X_ok = X.copy()
    if policy == "drop_rows":
        X_ok, y_ok = X[ok], y[ok]
    else:  # each level's column takes its frequency over the other rows
        X_ok[~ok, 6:10] = X[ok, 6:10].mean(0)
        y_ok = y
    reference = fit_elastic_net(InMemorySource(X_ok, y_ok, groups=groups), alpha=0.05,
                                l1_ratio=0.5, tol=1e-10)
    np.testing.assert_allclose(est.coef_, reference.coef, atol=1e-8)


def test_a_null_category_is_an_error_naming_the_column_by_default():
    from elasticnet_dist.errors import BadValuesError

    table = pa.table({"x": np.arange(6.0), "c": pa.array(["a", "b", None, "a", "b", "a"]),
                      "y": np.arange(6.0) % 2})
    with pytest.raises(BadValuesError, match=r"1 feature column\(s\) .*: 'c' \(1\)"):
        ElasticNet(alpha=0.1).fit(table, label="y")


def test_levels_are_read_over_every_file_and_sorted(tmp_path):
    X, y, _, country, plan = grouped_problem(120, seed=6)
    table = category_table(X, y, country, plan)
    pq.write_table(table.slice(0, 5), tmp_path / "a.parquet")  # fewer levels in one file
    pq.write_table(table.slice(5), tmp_path / "b.parquet")
    est = ElasticNet(alpha=0.05).fit(str(tmp_path), label="y")
    assert est.categorical_columns_ == (CategoricalColumn("country", tuple(LEVELS["country"])),
                                        CategoricalColumn("plan", tuple(LEVELS["plan"])))
    decoder = BlockDecoder(tuple(est.feature_names_in_), "y",
                           categorical=est.categorical_columns_)
    assert decoder.columns[:8] == ["x%d" % j for j in range(6)] + ["country", "plan"]
    assert list(decoder.groups) == [-1] * 6 + [0] * 4 + [1] * 3


def test_too_many_levels_all_null_and_max_levels_zero():
    X, y, _, country, plan = grouped_problem(100, seed=7)
    table = category_table(X, y, country, plan, ident=pa.array(["r%d" % i for i in range(100)]),
                           blank=pa.array([None] * 100, pa.string()))
    est = ElasticNet(alpha=0.05).fit(table, label="y", max_levels=4)
    assert est.dropped_features_["ident"] == "too_many_levels"
    assert est.dropped_details_["ident"] == {"levels": 100}
    assert est.dropped_features_["blank"] == "all_null"
    assert [c.name for c in est.categorical_columns_] == ["country", "plan"]
    est = ElasticNet(alpha=0.05).fit(table, label="y", max_levels=3)
    assert est.dropped_features_["country"] == "too_many_levels"
    est = ElasticNet(alpha=0.05).fit(table, label="y", max_levels=0)
    assert {est.dropped_features_[c] for c in ("country", "plan", "ident")} == {"non_numeric"}
    assert est.categorical_columns_ == ()


def test_level_counts_beyond_what_pieces_send_back_are_lower_bounds(monkeypatch):
    """Pieces (on the workers) send back at most PIECE_VALUES values a column: beyond
    that the count is the largest piece's, flagged as a lower bound."""
    from elasticnet_dist.io import categorical
    from elasticnet_dist.io.table import MemoryPiece, TableInput

    monkeypatch.setattr(categorical, "PIECE_VALUES", 30)
    rows = pa.table({"few": ["a", "b"] * 20, "many": ["v%d" % i for i in range(40)]})
    pieces = [MemoryPiece(rows.slice(0, 20), "p0"), MemoryPiece(rows.slice(20), "p1")]
    table = TableInput("memory", "two pieces", rows.schema, pieces)
    calls = []

    def map_jobs(task, jobs):
        calls.append(len(jobs))
        return [task(job) for job in jobs]

    found = categorical.discover_levels(table, ["few", "many"], 3, map_jobs)
    assert calls == [2] and found["few"] == categorical.LevelCount(("a", "b"), 2, True)
    assert found["many"] == categorical.LevelCount((), 40, True)  # 20 a piece: sent back
    monkeypatch.setattr(categorical, "PIECE_VALUES", 10)
    found = categorical.discover_levels(table, ["many"], 3)
    assert found["many"] == categorical.LevelCount((), 20, False)


def test_a_level_feature_named_like_a_column_is_refused():
    X, y, _, country, plan = grouped_problem(50, seed=8)
    table = category_table(X, y, country, plan, **{"plan=a": np.ones(50)})
    with pytest.raises(ColumnTypeError, match=r"'plan=a'.*categorical column 'plan'"):
        ElasticNet(alpha=0.05).fit(table, label="y")


def test_a_penalty_factor_names_the_column_and_is_shared_by_its_levels():
    X, y, _, country, plan = grouped_problem(300, seed=9)
    table = category_table(X, y, country, plan)
    free = ElasticNet(alpha=0.2, penalty_factor={"plan": 0.0}).fit(table, label="y")
    assert np.all(free.coef_[10:13] != 0)  # unpenalised: in the model
    factors = np.ones(13)
    factors[10] = 0.5
    with pytest.raises(ValueError, match=r"categorical column 'plan' different factors"):
        ElasticNet(alpha=0.2, penalty_factor=factors).fit(table, label="y")


# ---- the stage ----------------------------------------------------------------------------

def write_category_files(folder, seed=10, n=600):
    X, y, _, country, plan = grouped_problem(n, seed=seed)
    table = category_table(X, y, country, plan,
                           ident=pa.array(["r%d" % i for i in range(n)]))
    folder.mkdir()
    pq.write_table(table.slice(0, n // 2), folder / "part-0.parquet")
    pq.write_table(table.slice(n // 2), folder / "part-1.parquet")
    return table


def select_categories(table, out, *flags, engine="local"):
    from elasticnet_dist.cli import EXIT_OK, main

    assert main(["select", "--input", str(table), "--label", "y", "--output", str(out),
                 "--no-report", "--l1-ratios", "0.5,1", "--cv", "3", "--engine", engine,
                 *flags]) == EXIT_OK
    return json.loads((out / "manifest.json").read_text())


def test_the_stage_writes_categorical_entries_and_apply_keeps_the_column(tmp_path, capsys):
    from elasticnet_dist.cli import EXIT_OK, main

    table = tmp_path / "t"
    write_category_files(table)
    document = select_categories(table, tmp_path / "out", "--max-levels", "10")
    check_manifest(document)
    assert document["schema_version"] == SCHEMA_VERSION
    (country,) = [f for f in document["selected"] if f["name"] == "country"]
    assert country["kind"] == "categorical" and country["levels"] == LEVELS["country"]
    assert country["coefficient"] == pytest.approx(np.linalg.norm(country["coefficients"]))
    assert country["coefficients"][1] > 0 > country["coefficients"][3]  # FR up, US down
    dropped = {d["name"]: d for d in document["dropped"]}
    assert dropped["ident"] == {"name": "ident", "reason": "too_many_levels", "levels": 600}
    assert dropped["plan"]["reason"] == "zero_coefficient"
    schema = {c["name"]: c for c in document["reduced_schema"]}
    assert schema["country"] == {"name": "country", "type": "string", "role": "feature",
                                 "kind": "categorical", "levels": LEVELS["country"]}
    assert "plan" not in schema and "country=FR" not in schema
    # a later table with a level the manifest does not know: reported, not fatal
    later = tmp_path / "later"
    later.mkdir()
    part = pq.read_table(table / "part-1.parquet")
    values = part.column("country").to_pylist()
    values[:3] = ["IT", "IT", "ES"]
    part = part.set_column(part.schema.get_field_index("country"), "country",
                           pa.array(values))
    pq.write_table(part, later / "part-1.parquet")
    manifest = str(tmp_path / "out" / "manifest.json")
    capsys.readouterr()
    assert main(["validate", manifest, "--input", str(later)]) == EXIT_OK
    logged = capsys.readouterr().err
    assert "'country'" in logged and "3 row(s)" in logged and "'ES'" in logged
    assert main(["apply", "--manifest", manifest, "--input", str(later), "--output",
                 str(tmp_path / "reduced")]) == EXIT_OK
    written = pq.read_table(tmp_path / "reduced" / "part-1.parquet")
    assert written.column("country").to_pylist() == values
    marker = json.loads((tmp_path / "reduced" / "_elasticnet_dist_apply.json").read_text())
    assert marker["unseen_levels"] == {"country": {"rows": 3, "examples": ["ES", "IT"]}}


def test_a_broken_categorical_entry_fails_the_schema(tmp_path):
    table = tmp_path / "t"
    write_category_files(table)
    document = select_categories(table, tmp_path / "out")
    (country,) = [f for f in document["selected"] if f["name"] == "country"]
    del country["coefficients"]
    with pytest.raises(Exception, match=r"coefficients"):
        check_manifest(document)


def test_a_warm_start_reads_the_levels_coefficients_back(tmp_path):
    table = tmp_path / "t"
    write_category_files(table)
    first = select_categories(table, tmp_path / "first")
    second = select_categories(table, tmp_path / "second", "--warm-start",
                               str(tmp_path / "first" / "manifest.json"))
    names = lambda doc: [f["name"] for f in doc["selected"]]  # noqa: E731
    assert names(second) == names(first)
    (a,) = [f for f in first["selected"] if f["name"] == "country"]
    (b,) = [f for f in second["selected"] if f["name"] == "country"]
    np.testing.assert_allclose(b["coefficients"], a["coefficients"], rtol=1e-3)


# ---- engines -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dask", "spark"])
def test_the_stage_on_a_cluster_selects_what_it_selects_locally(name, request, tmp_path):
    request.getfixturevalue("dask_client" if name == "dask" else "spark")
    table = tmp_path / "t"
    write_category_files(table)
    local = select_categories(table, tmp_path / "local")
    remote = select_categories(table, tmp_path / name, engine=name)
    assert remote["reduced_schema"] == local["reduced_schema"]
    assert remote["dropped"] == local["dropped"]
    for a, b in zip(remote["selected"], local["selected"], strict=True):
        assert a["name"] == b["name"]
        np.testing.assert_allclose(a.get("coefficients", a["coefficient"]),
                                   b.get("coefficients", b["coefficient"]), rtol=1e-9)


def test_a_dask_frame_s_string_columns_are_categorical(dask_client):
    import dask.dataframe as dd

    X, y, _, country, plan = grouped_problem(300, seed=11)
    frame = category_table(X, y, country, plan).to_pandas()
    frame["plan"] = frame["plan"].astype(str)
    frame["ident"] = ["r%d" % i for i in range(300)]
    local = ElasticNet(alpha=0.05).fit(frame, label="y")
    remote = ElasticNet(alpha=0.05, engine="dask", cluster=dask_client).fit(
        dd.from_pandas(frame, npartitions=3), label="y")
    assert remote.categorical_columns_ == local.categorical_columns_
    assert remote.dropped_details_ == local.dropped_details_ == {"ident": {"levels": 300}}
    np.testing.assert_allclose(remote.coef_, local.coef_, atol=1e-10)


def test_the_spark_selector_takes_string_columns_as_categories(spark):
    X, y, _, country, plan = grouped_problem(400, seed=12)
    frame = category_table(X, y, country, plan).to_pandas()
    frame["plan"] = frame["plan"].astype(str)
    frame["id"] = np.arange(400)
    frame["ident"] = ["r%d" % i for i in range(400)]
    df = spark.createDataFrame(frame)
    from elasticnet_dist.spark_ml import ElasticNetSelector

    cols = ["x%d" % j for j in range(6)] + ["country", "plan", "ident"]
    model = ElasticNetSelector(featuresCols=cols, labelCol="y", outputCol="features",
                               regParam=0.15, elasticNetParam=1.0, keyCols=["id"]).fit(df)
    assert "country" in model.selectedFeatures and "plan" not in model.selectedFeatures
    dropped = {d["name"]: d for d in model.manifest["dropped"]}
    assert dropped["ident"] == {"name": "ident", "reason": "too_many_levels", "levels": 400}
    coefficients = model.coefficients
    assert set(coefficients) >= {"country=%s" % v for v in LEVELS["country"]}
    rows = model.transform(df).select("country", "features").collect()
    position = model.selectedFeatures.index("country")  # numeric ones take one slot each
    for row in rows[:20]:
        hot = row["features"].toArray()[position:position + 4]
        np.testing.assert_array_equal(hot, np.eye(4)[LEVELS["country"].index(row["country"])])
