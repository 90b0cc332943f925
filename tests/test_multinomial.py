"""The multinomial loss with glmnet's grouped penalty: against R glmnet's
``family = "multinomial", type.multinomial = "grouped"`` (fixtures written once by
``fixtures/make_glmnet_multinomial.py``) and scikit-learn's multinomial
``LogisticRegression``; its pass kernel against the formulas written out; its
cross-validation scores against refits; its labels."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from conftest import run_cli
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.cli import EXIT_INPUT, EXIT_OK
from elasticnet_dist.manifest import SCHEMA_VERSION, check_manifest
from elasticnet_dist.passes import HessianBlock, PassRequest, block_stats
from elasticnet_dist.solvers.multinomial import multinomial_path
from elasticnet_dist.solvers.options import SolverOptions
from elasticnet_dist.sources import InMemorySource

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "glmnet_multinomial.json")
with open(FIXTURE) as f:
    GLMNET = json.load(f)
CASES = {c["name"]: c for c in GLMNET["cases"]}


def softmax(eta):
    z = np.exp(eta - eta.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def objective(case, coef, intercept):
    """glmnet's grouped objective, written out: the weighted mean of ``-log p_y`` plus
    ``lambda ((1 - a)/2 ||sd w_j||^2 + a ||sd w_j||)`` summed over features."""
    X, y = np.asarray(case["X"]), np.asarray(case["y"])
    s = np.asarray(case.get("weight", np.ones(len(y))))
    P = softmax(X @ np.asarray(coef).T + intercept)
    loss = -(s @ np.log(P[np.arange(len(y)), y])) / s.sum()
    if case["standardize"]:
        mean = s @ X / s.sum()
        sd = np.sqrt(s @ (X - mean) ** 2 / s.sum())
    else:
        sd = np.ones(X.shape[1])
    W = np.asarray(coef) * sd
    a = case["alpha"]
    return loss, (1 - a) / 2 * np.sum(W ** 2) + a * np.sum(np.linalg.norm(W, axis=0))


def random_problem(n=300, p=12, C=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 2.0, p) + rng.uniform(-1, 1, p)
    B = np.zeros((C, p))
    B[:, :4] = rng.uniform(-1.2, 1.2, (C, 4))
    P = softmax((X - X.mean(axis=0)) @ B.T)
    y = np.array([rng.choice(C, p=row) for row in P])
    y[:C] = np.arange(C)
    return X, y


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_path_equals_glmnets_grouped_multinomial(name):
    """Coefficients and intercepts within 1e-6 of glmnet's (at ``thresh = 1e-20``), and
    an objective no higher than glmnet's beyond rounding."""
    case = CASES[name]
    X, y = np.asarray(case["X"]), np.asarray(case["y"], dtype=float)
    path = multinomial_path(InMemorySource(X, y, sample_weight=case.get("weight")),
                            case["n_classes"], l1_ratio=case["alpha"], alphas=case["lambdas"],
                            fit_intercept=case["intercept"], standardize=case["standardize"],
                            options=SolverOptions(tol=1e-13))
    assert path.converged.all()
    for i, lam in enumerate(case["lambdas"]):
        theirs_w, theirs_b = np.asarray(case["coefs"][i]), np.asarray(case["intercepts"][i])
        np.testing.assert_allclose(path.coefs[i], theirs_w, rtol=0, atol=1e-6)
        np.testing.assert_allclose(path.intercepts[i], theirs_b, rtol=0, atol=1e-6)
        # the same features selected, each for every class
        assert (np.any(path.coefs[i] != 0, axis=0) == np.any(theirs_w != 0, axis=0)).all()
        loss, penalty = objective(case, path.coefs[i], path.intercepts[i])
        ours = loss + lam * penalty
        loss, penalty = objective(case, theirs_w, theirs_b)
        glmnet = loss + lam * penalty
        assert ours <= glmnet + 1e-13
        if case["intercept"]:
            assert abs(path.intercepts[i].sum()) < 1e-12  # centred, as glmnet's


def test_ridge_equals_scikit_learns_multinomial_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    X, y = random_problem(400, 10, 4, seed=1)
    alpha = 0.02
    ours = ElasticNet(alpha=alpha, l1_ratio=0.0, loss="multinomial", standardize=False,
                      tol=1e-13).fit(X, y)
    # scikit-learn: (1 / (2 C)) ||W||^2 + sum of log-losses, i.e. ours with C = 1 / (n alpha)
    theirs = LogisticRegression(C=1.0 / (len(y) * alpha), tol=1e-12, max_iter=10_000,
                                solver="newton-cg").fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X[:20]), theirs.predict_proba(X[:20]),
                               atol=1e-8)
    assert ours.score(X, y) == theirs.score(X, y)


@pytest.mark.parametrize("sparse", [False, True])
def test_a_pass_gives_the_multinomial_sums_written_out(sparse):
    """Loss, gradient, and every class pair's Hessian block of a point, on dense and CSR
    rows, against ``X' (s (P - Y))`` and ``X_c' diag(s p_c (1[c = e] - p_e)) X_c``."""
    X, y = random_problem(200, 7, 3, seed=2)
    s = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    C, p = 3, X.shape[1]
    rng = np.random.default_rng(4)
    W, b = rng.standard_normal((C, p)) * 0.3, rng.standard_normal(C)
    cols, center = np.array([1, 4, 5]), X.mean(axis=0)
    request = PassRequest(loss="multinomial", n_classes=C, coefs=W, intercepts=b,
                          hessians=(HessianBlock(cols=cols, center=center),))
    stats = block_stats(sp.csr_matrix(X) if sparse else X, y.astype(float), s, request)
    P = softmax(X @ W.T + b)
    Y = np.eye(C)[y]
    assert stats["loss_sum"][0] == pytest.approx(-(s @ np.log(P[np.arange(len(y)), y])),
                                                 rel=1e-12)
    np.testing.assert_allclose(stats["grad"][0], ((P - Y) * s[:, None]).T @ X, rtol=1e-10)
    np.testing.assert_allclose(stats["grad_sum"][0], s @ (P - Y), rtol=1e-10, atol=1e-12)
    Xc = X[:, cols] - center[cols]
    for c in range(C):
        for e in range(C):
            h = s * P[:, c] * ((c == e) - P[:, e])
            np.testing.assert_allclose(stats["hess.0"][c, e], Xc.T @ (h[:, None] * Xc),
                                       rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(stats["hess_col_sums.0"][c, e], h @ Xc, rtol=1e-9,
                                       atol=1e-10)
            assert stats["hess_sum.0"][c, e] == pytest.approx(h.sum(), abs=1e-10)


def test_cross_validation_scores_are_the_held_out_deviance_and_error_rate():
    X, y = random_problem(450, 15, 3, seed=5)
    n = len(y)
    splits = [(np.flatnonzero(np.arange(n) % 3 != k), np.flatnonzero(np.arange(n) % 3 == k))
              for k in range(3)]
    cv = ElasticNetCV(l1_ratio=0.7, alphas=15, cv=splits, loss="multinomial",
                      tol=1e-10).fit(X, y)
    results = cv.cv_results_
    a = 8  # refit each fold at one point of the path and score its held-out rows
    for k, (train, test) in enumerate(splits):
        fold = ElasticNet(alpha=cv.alphas_[a], l1_ratio=0.7, loss="multinomial",
                          tol=1e-12).fit(X[train], y[train])
        P = fold.predict_proba(X[test])
        deviance = -2.0 * np.mean(np.log(P[np.arange(len(test)), y[test]]))
        assert results["deviance"][a, k] == pytest.approx(deviance, rel=1e-6)
        error = np.mean(fold.predict(X[test]) != y[test])
        assert results["misclassification"][a, k] == pytest.approx(error, abs=1e-12)
    assert cv.coef_.shape == (3, 15) and cv.intercept_.shape == (3,)
    assert cv.coef_path_.shape == (3, 15, len(cv.alphas_))
    support = cv.get_support()
    assert support[:4].all() and 4 <= support.sum() < 15
    assert (np.any(cv.coef_ != 0, axis=0) == support).all()


def test_labels_keep_their_names_and_order():
    X, y = random_problem(300, 6, 3, seed=6)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = ElasticNet(alpha=0.01, l1_ratio=0.5, loss="multinomial").fit(X, names)
    codes = ElasticNet(alpha=0.01, l1_ratio=0.5, loss="multinomial").fit(X, y)
    assert est.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(est.coef_, codes.coef_)
    assert set(est.predict(X)) <= set(est.classes_)
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("y, match", [
    (np.zeros(30), r"single class \(0.0\) for loss='multinomial'"),
    (np.array(["a"] * 30), r"single class \('a'\) for loss='multinomial'"),
])
def test_a_single_class_is_named(y, match):
    X = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(ValueError, match=match):
        ElasticNet(alpha=0.1, loss="multinomial").fit(X, y)


def test_a_class_missing_from_a_folds_training_rows_is_named():
    from elasticnet_dist.errors import BadValuesError

    X, y = random_problem(90, 5, 3, seed=7)
    y[:] = np.where(y == 2, 0, y)
    rare = np.arange(0, 90, 3)[:4]
    y[rare] = 2  # class 2 only in fold 0 of splits by position mod 3
    splits = [(np.flatnonzero(np.arange(90) % 3 != k), np.flatnonzero(np.arange(90) % 3 == k))
              for k in range(3)]
    with pytest.raises(BadValuesError, match=r"class 2 has no rows of positive weight in the "
                                             r"training rows of fold 0"):
        ElasticNetCV(l1_ratio=1.0, alphas=5, cv=splits, loss="multinomial").fit(X, y)


def test_penalty_factor_zero_and_other_solvers_are_refused():
    X, y = random_problem(100, 4, 3, seed=8)
    with pytest.raises(ValueError, match="penalty_factor must hold 4 positive"):
        ElasticNet(alpha=0.1, loss="multinomial", penalty_factor=[0, 1, 1, 1]).fit(X, y)
    with pytest.raises(ValueError, match="solver='gram' needs a quadratic loss"):
        ElasticNet(alpha=0.1, loss="multinomial", solver="gram").fit(X, y)


# ---- tables, the stage, the engines, Spark ML ----------------------------------------------

REGIONS = ["east", "north", "south", "west"]


def write_class_table(folder, n=1200, p=10, files=3, seed=9):
    """Parquet files of ``p`` numeric features and a string label of four classes,
    drawn from the softmax of the first three features; the informative names."""
    X, y = random_problem(n, p, len(REGIONS), seed=seed)
    labels = np.array(REGIONS)[y]
    os.makedirs(folder, exist_ok=True)
    bounds = np.linspace(0, n, files + 1).astype(int)
    for k in range(files):
        rows = slice(bounds[k], bounds[k + 1])
        table = pa.table({**{"x%d" % j: X[rows, j] for j in range(p)}, "region": labels[rows],
                          "id": np.arange(n)[rows]})
        pq.write_table(table, os.path.join(folder, "part-%d.parquet" % k))
    return X, labels


def select_classes(table, out, engine="local", *extra):
    done = run_cli("select", "--input", table, "--label", "region", "--loss", "multinomial",
                   "--keys", "id", "--l1-ratios", "1.0", "--n-alphas", "30", "--output", out,
                   "--engine", engine, *extra)
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    return json.loads((out / "manifest.json").read_text())


def test_the_stage_selects_from_a_table_of_class_labels(tmp_path):
    X, labels = write_class_table(tmp_path / "t")
    manifest = select_classes(tmp_path / "t", tmp_path / "o")
    check_manifest(manifest)
    assert manifest["schema_version"] == SCHEMA_VERSION == "1.6"
    assert manifest["target"]["loss"] == "multinomial"
    assert manifest["target"]["classes"] == REGIONS
    assert len(manifest["intercept"]) == 4 and abs(sum(manifest["intercept"])) < 1e-12
    assert manifest["selection"]["metric"] == "deviance"
    selected = {f["name"]: f for f in manifest["selected"]}
    assert {"x0", "x1", "x2", "x3"} <= set(selected)
    for f in selected.values():
        assert len(f["class_coefficients"]) == 4
        assert f["coefficient"] == pytest.approx(np.linalg.norm(f["class_coefficients"]))
        assert abs(sum(f["class_coefficients"])) < 1e-9  # centred over the classes
    # the manifest's coefficients are the estimator's path at the chosen alpha
    est = ElasticNetCV(l1_ratio=1.0, alphas=30, loss="multinomial").fit(
        str(tmp_path / "t"), label="region", keys=["id"])
    coef = np.array([selected.get("x%d" % j, {}).get("class_coefficients", [0.0] * 4)
                     for j in range(X.shape[1])]).T
    (at,) = np.flatnonzero(est.alphas_ == manifest["penalty"]["alpha"])
    np.testing.assert_allclose(coef, est.coef_path_[:, :, at], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(manifest["intercept"], est.intercept_path_[at], rtol=1e-9)
    page = (tmp_path / "o" / "report.html").read_text()
    assert "intercepts: east" in page and "standardized: west" in page
    assert run_cli("validate", "--manifest", tmp_path / "o" / "manifest.json", "--input",
                   tmp_path / "t").returncode == EXIT_OK
    old = dict(manifest, schema_version="1.5")  # the version before still validates ...
    old["target"] = dict(manifest["target"], loss="logistic", classes=[0, 1])
    old.update(intercept=0.1, selected=[{k: v for k, v in f.items() if "class_" not in k}
                                        for f in manifest["selected"]])
    check_manifest(old)


def test_a_table_label_of_one_class_is_named(tmp_path):
    write_class_table(tmp_path / "t", n=60)
    frame = pq.read_table(tmp_path / "t").to_pandas()
    frame = frame.assign(region="east")
    for k, part in enumerate((frame.iloc[:30], frame.iloc[30:])):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       tmp_path / "t" / ("part-%d.parquet" % k))
    (tmp_path / "t" / "part-2.parquet").unlink()
    done = run_cli("select", "--input", tmp_path / "t", "--label", "region", "--loss",
                   "multinomial", "--output", tmp_path / "o", "--engine", "local", "--no-report")
    assert done.returncode == EXIT_INPUT, done.stderr[-2000:]
    assert "label column 'region'" in done.stderr and "one class ('east')" in done.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_a_string_label_needs_the_multinomial_loss(tmp_path):
    write_class_table(tmp_path / "t", n=60)
    done = run_cli("select", "--input", tmp_path / "t", "--label", "region", "--loss",
                   "logistic", "--output", tmp_path / "o", "--engine", "local", "--no-report")
    assert done.returncode == EXIT_INPUT, done.stderr[-2000:]
    assert "label column 'region'" in done.stderr and "must be numeric" in done.stderr


@pytest.mark.parametrize("name", ["dask", "spark"])
def test_the_stage_on_a_cluster_selects_the_classes_it_selects_locally(name, request, tmp_path):
    request.getfixturevalue("dask_client" if name == "dask" else "spark")
    write_class_table(tmp_path / "t")
    local = select_classes(tmp_path / "t", tmp_path / "local", "local", "--no-report")
    remote = select_classes(tmp_path / "t", tmp_path / name, name, "--no-report")
    assert remote["reduced_schema"] == local["reduced_schema"]
    assert remote["target"] == local["target"]
    assert remote["penalty"] == local["penalty"]
    for a, b in zip(remote["selected"], local["selected"], strict=True):
        assert a["name"] == b["name"]
        np.testing.assert_allclose(a["class_coefficients"], b["class_coefficients"], rtol=1e-9)


def test_the_spark_selector_equals_spark_mllibs_multinomial_ridge(spark):
    """Without an L1 part the grouped problem is Spark MLlib's multinomial
    ``LogisticRegression`` with standardization: the same coefficients."""
    import pandas as pd
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    from elasticnet_dist.spark_ml import ElasticNetSelector

    X, y = random_problem(600, 6, 3, seed=10)
    cols = ["x%d" % j for j in range(6)]
    df = spark.createDataFrame(pd.DataFrame({**{c: X[:, j] for j, c in enumerate(cols)},
                                             "y": y.astype(float), "id": np.arange(600)}))
    theirs = LogisticRegression(labelCol="y", family="multinomial", regParam=0.05,
                                elasticNetParam=0.0, standardization=True, tol=1e-12,
                                maxIter=1000).fit(
        VectorAssembler(inputCols=cols, outputCol="features").transform(df))
    model = ElasticNetSelector(featuresCols=cols, labelCol="y", family="multinomial",
                               regParam=0.05, elasticNetParam=0.0, tol=1e-12).fit(df)
    by_name = {f["name"]: f["class_coefficients"] for f in model.manifest["selected"]}
    ours = np.array([by_name[c] for c in cols]).T
    np.testing.assert_allclose(ours, theirs.coefficientMatrix.toArray(), atol=1e-8)
    np.testing.assert_allclose(model.intercept, theirs.interceptVector.toArray(), atol=1e-8)
    assert model.manifest["target"]["classes"] == [0.0, 1.0, 2.0]
    lasso = ElasticNetSelector(featuresCols=cols, labelCol="y", family="multinomial",
                               keyCols=["id"], numAlphas=20, elasticNetParams=[1.0]).fit(df)
    assert set(lasso.selectedFeatures) >= {"x0", "x1", "x2", "x3"}


def test_a_warm_start_from_a_multinomial_manifest_finds_the_same_penalty(tmp_path):
    write_class_table(tmp_path / "t")
    cold = select_classes(tmp_path / "t", tmp_path / "cold", "local", "--no-report",
                          "--n-alphas", "100")
    warm = select_classes(tmp_path / "t", tmp_path / "warm", "local", "--no-report",
                          "--n-alphas", "100", "--warm-start", tmp_path / "cold" / "manifest.json")
    assert warm["penalty"] == cold["penalty"]
    assert warm["solver"]["data_passes"] < cold["solver"]["data_passes"]
    for a, b in zip(warm["selected"], cold["selected"], strict=True):
        assert a["name"] == b["name"]
        np.testing.assert_allclose(a["class_coefficients"], b["class_coefficients"],
                                   rtol=1e-4, atol=1e-6)
    other = dict(cold, target=dict(cold["target"], classes=["a", "b", "c", "d"]))
    with pytest.raises(ValueError, match=r"has the classes \['a', 'b', 'c', 'd'\], this "
                                         r"search's label has \['east'"):
        ElasticNetCV(loss="multinomial", warm_start_from=other).fit(
            str(tmp_path / "t"), label="region", keys=["id"])


def test_stability_selection_counts_a_feature_selected_for_all_classes(tmp_path):
    write_class_table(tmp_path / "t")
    est = ElasticNetCV(l1_ratio=1.0, alphas=20, loss="multinomial", stability=10,
                       selection="1se").fit(str(tmp_path / "t"), label="region", keys=["id"])
    assert est.stability_.shape == (10,)
    assert (est.stability_[:4] >= 0.9).all()  # the informative features, every half
    assert set(np.unique(est.stability_ * 10)) <= set(range(11))  # counts of 10 halves
    assert est.stability_info_["n_subsamples"] == 10


def test_a_categorical_column_is_selected_for_every_class_and_level_or_dropped(tmp_path):
    """A string column's levels and the classes form one group: the informative
    column is kept whole (every level, every class), the noise column dropped whole."""
    rng = np.random.default_rng(12)
    n = 1500
    X = rng.standard_normal((n, 4))
    plan = rng.choice(["basic", "plus", "pro"], n)
    noise = rng.choice(["a", "b", "c", "d"], n)
    effect = {"basic": [1.2, -0.6, -0.6], "plus": [-0.6, 1.2, -0.6], "pro": [-0.6, -0.6, 1.2]}
    eta = np.array([effect[v] for v in plan]) + X[:, :1] * [1.0, 0.0, -1.0]
    y = np.array([rng.choice(3, p=row) for row in softmax(eta)])
    os.makedirs(tmp_path / "t")
    pq.write_table(pa.table({**{"x%d" % j: X[:, j] for j in range(4)}, "plan": plan,
                             "noise": noise, "segment": np.array(["s1", "s2", "s3"])[y],
                             "id": np.arange(n)}), tmp_path / "t" / "part-0.parquet")
    done = run_cli("select", "--input", tmp_path / "t", "--label", "segment", "--loss",
                   "multinomial", "--keys", "id", "--l1-ratios", "1.0", "--n-alphas", "30",
                   "--output", tmp_path / "o", "--engine", "local")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    check_manifest(manifest)
    selected = {f["name"]: f for f in manifest["selected"]}
    assert {"plan", "x0"} <= set(selected) and "noise" not in selected
    entry = selected["plan"]
    assert entry["kind"] == "categorical" and entry["levels"] == ["basic", "plus", "pro"]
    levels = np.array(entry["class_coefficients"])  # classes x levels
    assert levels.shape == (3, 3) and np.all(levels != 0)
    np.testing.assert_allclose(entry["coefficients"], np.linalg.norm(levels, axis=0))
    assert entry["coefficient"] == pytest.approx(np.linalg.norm(levels))
    assert {d["name"]: d["reason"] for d in manifest["dropped"]}["noise"] == "zero_coefficient"
    from elasticnet_dist.manifest import Manifest

    by_feature = Manifest(manifest).class_coefficients
    np.testing.assert_allclose(by_feature["plan=plus"], levels[:, 1])
    assert "plan" in (tmp_path / "o" / "report.html").read_text()


def test_enet_path_gives_the_multinomial_path_in_scikit_learns_layout():
    from elasticnet_dist import enet_path

    X, y = random_problem(300, 8, 3, seed=13)
    names = np.array(["a", "b", "c"])[y]
    path = enet_path(X, names, loss="multinomial", l1_ratio=0.8, alphas=12, tol=1e-10)
    assert path.classes.tolist() == ["a", "b", "c"]
    assert path.coefs.shape == (3, 8, len(path.alphas)) and path.intercepts.shape[1] == 3
    at = 6  # a point of the path is the single fit at its alpha
    fit = ElasticNet(alpha=path.alphas[at], l1_ratio=0.8, loss="multinomial",
                     tol=1e-10).fit(X, names)
    np.testing.assert_allclose(path.coefs[:, :, at], fit.coef_, atol=1e-5)
    assert path.n_features[at] == np.count_nonzero(np.any(fit.coef_ != 0, axis=0))


def test_max_features_counts_features_not_class_coefficients():
    X, y = random_problem(400, 12, 3, seed=14)
    cv = ElasticNetCV(l1_ratio=1.0, alphas=30, loss="multinomial", max_features=3).fit(X, y)
    reached = cv.n_features_path_[cv.n_features_path_ >= 0]
    assert reached.max() > 3 >= cv.get_support().sum() >= 1  # the path ran past 3 features ...
    assert reached.size < 30  # ... and stopped at the first point past them (glmnet's dfmax)
    assert reached[-1] > 3 >= reached[-2]
