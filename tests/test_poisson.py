"""The Poisson loss (counts, log link): against R glmnet's ``family = "poisson"``
(fixtures written once by ``fixtures/make_glmnet_poisson.py``) and scikit-learn's
``PoissonRegressor``, its labels, and the stage's CLI on a table of counts."""
from __future__ import annotations

import json
import re
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.manifest import SCHEMA_VERSION
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_OK
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.manifest import check_manifest

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "glmnet_poisson.json")
with open(FIXTURE) as f:
    GLMNET = json.load(f)
CASES = {c["name"]: c for c in GLMNET["cases"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_coefficients_equal_glmnets_to_1e_6(name):
    case = CASES[name]
    X, y = np.asarray(case["X"]), np.asarray(case["y"])
    for lam, b, w in zip(case["lambdas"], case["intercepts"], case["coefs"], strict=True):
        est = ElasticNet(alpha=lam, l1_ratio=case["alpha"], loss="poisson", glmnet_compat=True,
                         standardize=case["standardize"], fit_intercept=case["intercept"],
                         tol=1e-13).fit(X, y, sample_weight=case.get("weight"),
                                        offset=case.get("offset"))
        assert est.converged_
        np.testing.assert_allclose(est.coef_, w, rtol=0, atol=1e-6)
        assert est.intercept_ == pytest.approx(b, abs=1e-6)
        assert ((est.coef_ != 0) == (np.asarray(w) != 0)).all()


def test_ridge_equals_scikit_learns_poisson_regressor():
    from sklearn.linear_model import PoissonRegressor

    t = make_wide_table(400, 12, n_informative=4, seed=3, loss="poisson")
    ours = ElasticNet(alpha=0.05, l1_ratio=0.0, loss="poisson", standardize=False,
                      tol=1e-13).fit(t.X, t.y)
    # lbfgs stops 2e-5 short on these scales (its objective 2.6e-11 above ours)
    theirs = PoissonRegressor(alpha=0.05, tol=1e-12, solver="newton-cholesky").fit(t.X, t.y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-7)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, abs=1e-7)
    assert ours.score(t.X, t.y) == pytest.approx(theirs.score(t.X, t.y), rel=1e-9)
    np.testing.assert_allclose(ours.predict(t.X[:5]), theirs.predict(t.X[:5]), rtol=1e-7)


def test_cross_validation_scores_the_held_out_poisson_deviance():
    from sklearn.metrics import mean_poisson_deviance

    t = make_wide_table(600, 30, n_informative=5, seed=4, loss="poisson")
    splits = [(np.flatnonzero(np.arange(600) % 3 != k), np.flatnonzero(np.arange(600) % 3 == k))
              for k in range(3)]
    cv = ElasticNetCV(l1_ratio=0.8, alphas=20, cv=splits, loss="poisson", tol=1e-10).fit(t.X, t.y)
    a = 7  # a point of the path: refit each fold there and score it independently
    for k, (train, test) in enumerate(splits):
        fold = ElasticNet(alpha=cv.alphas_[a], l1_ratio=0.8, loss="poisson",
                          tol=1e-12).fit(t.X[train], t.y[train])
        expected = mean_poisson_deviance(t.y[test], fold.predict(t.X[test]))
        assert cv.scores_[a, k] == pytest.approx(expected, rel=1e-6)
    assert 5 <= np.count_nonzero(cv.coef_) < 30


@pytest.mark.parametrize("y, match", [
    (np.r_[np.ones(20), -1.0], r"non-negative counts for loss='poisson'; found \[-1.0\]"),
    (np.zeros(21), "0 in every row for loss='poisson'"),
])
def test_bad_count_labels_are_named(y, match):
    X = np.random.default_rng(0).standard_normal((21, 3))
    with pytest.raises(ValueError, match=match):
        ElasticNet(alpha=0.1, loss="poisson").fit(X, y)


def _count_table(folder, y):
    """Six features and the count label ``claims`` in two files."""
    X = np.random.default_rng(5).standard_normal((y.size, 6))
    table = pa.table({**{"x%d" % j: X[:, j] for j in range(6)}, "claims": y})
    os.makedirs(folder)
    half = y.size // 2
    pq.write_table(table.slice(0, half), os.path.join(folder, "part-0.parquet"))
    pq.write_table(table.slice(half), os.path.join(folder, "part-1.parquet"))


def test_the_stage_selects_from_a_table_of_counts(tmp_path):
    t = make_wide_table(500, 20, n_informative=4, seed=6, loss="poisson")
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    done = run_cli("select", "--input", path, "--label", "y", "--loss", "poisson", "--output",
                tmp_path / "o", "--engine", "local", "--n-alphas", "20", "--no-report")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    check_manifest(manifest)
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["target"]["loss"] == "poisson"
    selected = {f["name"] for f in manifest["selected"]}
    informative = {t.names[j] for j in np.flatnonzero(t.coef)}
    assert informative <= selected
    old = dict(manifest, schema_version="1.0")  # a manifest of the version before validates
    check_manifest(old)


def test_a_negative_count_in_a_file_is_named_with_its_file(tmp_path):
    y = np.r_[np.arange(30) % 4, np.arange(29) % 3, -2.0].astype(float)
    _count_table(tmp_path / "t", y)
    done = run_cli("select", "--input", tmp_path / "t", "--label", "claims", "--loss", "poisson",
                "--output", tmp_path / "o", "--engine", "local", "--no-report")
    assert done.returncode == EXIT_INPUT, done.stderr[-2000:]
    assert "claims" in done.stderr and "non-negative counts" in done.stderr
    assert "part-1.parquet" in done.stderr and "-2" in done.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_every_solver_that_takes_the_loss_gives_the_same_fit():
    t = make_wide_table(300, 15, n_informative=4, seed=7, loss="poisson")
    fits = {solver: ElasticNet(alpha=0.02, l1_ratio=0.7, loss="poisson", solver=solver,
                               tol=1e-12, max_iter=20_000).fit(t.X, t.y)
            for solver in ("newton", "fista")}
    # both certified to the gap: equal where the data scale does not magnify the difference
    np.testing.assert_allclose(fits["fista"].coef_standardized_,
                               fits["newton"].coef_standardized_, atol=1e-5)
    assert all(f.converged_ for f in fits.values())
    with pytest.raises(ValueError, match="solver='gram' needs a quadratic loss"):
        ElasticNet(alpha=0.02, loss="poisson", solver="gram").fit(t.X, t.y)


# ---- offsets: the log of each row's exposure ----------------------------------------------
def _exposure_problem(n=400, p=12, seed=11):
    """Counts over exposures in [0.2, 5]: ``y ~ Poisson(e^(o + 0.3 + x.w))``, ``o = log t``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[:3] = [0.5, -0.4, 0.3]
    o = np.log(rng.uniform(0.2, 5.0, n))
    y = rng.poisson(np.exp(0.3 + o + X @ w)).astype(float)
    return X, y, o


def test_an_offset_is_the_exposure_weighted_rate_model():
    """With an offset o, sum s (e^(eta + o) - y (eta + o)) equals the Poisson loss of the
    rates y e^-o under weights s e^o, term by term: the same minimiser once the penalty
    is rescaled by the ratio of the weight sums (and standardization switched off, as
    it would weigh the columns differently)."""
    X, y, o = _exposure_problem()
    alpha = 0.01
    with_offset = ElasticNet(alpha=alpha, l1_ratio=0.7, loss="poisson", standardize=False,
                             tol=1e-12).fit(X, y, offset=o)
    exposure = np.exp(o)
    as_rates = ElasticNet(alpha=alpha * y.size / exposure.sum(), l1_ratio=0.7, loss="poisson",
                          standardize=False, tol=1e-12).fit(X, y / exposure,
                                                            sample_weight=exposure)
    np.testing.assert_allclose(with_offset.coef_, as_rates.coef_, atol=1e-10)
    assert with_offset.intercept_ == pytest.approx(as_rates.intercept_, abs=1e-10)
    without = ElasticNet(alpha=alpha, l1_ratio=0.7, loss="poisson", standardize=False,
                         tol=1e-12).fit(X, y)
    assert np.abs(without.coef_ - with_offset.coef_).max() > 1e-3  # the offset matters
    mean = with_offset.predict(X[:4], offset=o[:4])
    np.testing.assert_allclose(mean, np.exp(X[:4] @ with_offset.coef_
                                            + with_offset.intercept_ + o[:4]), rtol=1e-12)
    assert with_offset.score(X, y, offset=o) > with_offset.score(X, y)


def test_cross_validation_with_an_offset_scores_each_fold_with_its_offsets():
    from sklearn.metrics import mean_poisson_deviance

    X, y, o = _exposure_problem(n=450, seed=12)
    splits = [(np.flatnonzero(np.arange(450) % 3 != k), np.flatnonzero(np.arange(450) % 3 == k))
              for k in range(3)]
    cv = ElasticNetCV(l1_ratio=0.8, alphas=15, cv=splits, loss="poisson",
                      tol=1e-10).fit(X, y, offset=o)
    a = 6
    for k, (train, test) in enumerate(splits):
        fold = ElasticNet(alpha=cv.alphas_[a], l1_ratio=0.8, loss="poisson",
                          tol=1e-12).fit(X[train], y[train], offset=o[train])
        expected = mean_poisson_deviance(y[test], fold.predict(X[test], offset=o[test]))
        assert cv.scores_[a, k] == pytest.approx(expected, rel=1e-6)
    assert set(np.flatnonzero(cv.coef_)) >= {0, 1, 2}


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_an_offset_is_refused_for_a_loss_that_takes_none(loss):
    X, y, o = _exposure_problem(n=40)
    with pytest.raises(ValueError, match="offset .* is only for loss='poisson'"):
        ElasticNet(alpha=0.1, loss=loss).fit(X, (y > 1).astype(float), offset=o)


@pytest.mark.parametrize("bad, match", [
    (np.r_[np.zeros(39), np.nan], r"offset has 1 NaN or inf values \(first rows \[39\]\)"),
    (np.full(40, 1e3), "give the log of the exposure, not the exposure"),
    (np.zeros(39), r"offset has shape \(39,\); X has 40 rows"),
    ("log_t", "offset='log_t' names a column, but fit was given arrays"),
])
def test_bad_offsets_are_named(bad, match):
    X, y, _ = _exposure_problem(n=40)
    with pytest.raises(ValueError, match=match):
        ElasticNet(alpha=0.1, loss="poisson").fit(X, y, offset=bad)


def _exposure_table(folder, n=400, seed=11, files=2):
    X, y, o = _exposure_problem(n=n, seed=seed)
    table = pa.table({**{"x%d" % j: X[:, j] for j in range(X.shape[1])}, "claims": y,
                      "log_exposure": o})
    os.makedirs(folder)
    step = -(-n // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), os.path.join(folder, "part-%d.parquet" % i))
    return X, y, o


def test_the_stage_takes_an_offset_column_and_names_it_in_the_manifest(tmp_path):
    X, y, o = _exposure_table(tmp_path / "t")
    done = run_cli("select", "--input", tmp_path / "t", "--label", "claims", "--offset",
                "log_exposure", "--loss", "poisson", "--alpha", "0.01", "--l1-ratio", "0.7",
                "--output", tmp_path / "o", "--engine", "local", "--no-report")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    check_manifest(manifest)
    assert manifest["target"]["offset"] == "log_exposure"
    assert {"name": "log_exposure", "type": "double", "role": "offset"} \
        in manifest["reduced_schema"]
    assert "log_exposure" not in {d["name"] for d in manifest["dropped"]}
    ours = ElasticNet(alpha=0.01, l1_ratio=0.7, loss="poisson", tol=1e-8).fit(X, y, offset=o)
    coefs = {f["name"]: f["coefficient"] for f in manifest["selected"]}
    np.testing.assert_allclose([coefs.get("x%d" % j, 0.0) for j in range(X.shape[1])],
                               ours.coef_, atol=1e-5)


@pytest.mark.parametrize("args, code, match", [
    (["--offset", "log_exposure", "--loss", "squared"], EXIT_CONFIG,
     "input.offset .* for model.loss poisson"),
    (["--offset", "log_exposur", "--loss", "poisson"], EXIT_INPUT,
     "offset column 'log_exposur' is not in .* did you mean 'log_exposure'"),
    (["--offset", "claims", "--loss", "poisson"], EXIT_CONFIG,
     "column 'claims' is given two roles, input.label and input.offset"),
])
def test_a_bad_offset_option_is_named_and_writes_nothing(tmp_path, args, code, match):
    _exposure_table(tmp_path / "t", n=60)
    done = run_cli("select", "--input", tmp_path / "t", "--label", "claims", *args,
                "--output", tmp_path / "o", "--engine", "local", "--no-report")
    assert done.returncode == code, done.stderr[-2000:]
    assert re.search(match, done.stderr), done.stderr[-2000:]
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_a_missing_offset_value_is_named_with_its_column_and_file(tmp_path):
    X, y, o = _exposure_problem(n=60)
    os.makedirs(tmp_path / "t")
    table = pa.table({"x0": X[:, 0], "claims": y, "log_exposure": pa.array(
        o.tolist()[:59] + [None], pa.float64())})
    pq.write_table(table, tmp_path / "t" / "part-0.parquet")
    done = run_cli("select", "--input", tmp_path / "t", "--label", "claims", "--offset",
                "log_exposure", "--loss", "poisson", "--output", tmp_path / "o",
                "--engine", "local", "--no-report")
    assert done.returncode == EXIT_INPUT, done.stderr[-2000:]
    assert "offset column 'log_exposure' has 1 missing" in done.stderr
    assert "part-0.parquet" in done.stderr


@pytest.mark.cluster
@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_an_offset_column_gives_the_same_fit_on_every_engine(tmp_path, engine, request):
    cluster = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    X, y, o = _exposure_table(tmp_path / "t", n=400, files=4)
    options = dict(l1_ratio=0.8, alphas=12, cv=3, loss="poisson", tol=1e-10)
    here = ElasticNetCV(**options).fit(str(tmp_path / "t"), label="claims",
                                       offset="log_exposure")
    there = ElasticNetCV(**options, engine=engine, cluster=cluster).fit(
        str(tmp_path / "t"), label="claims", offset="log_exposure")
    np.testing.assert_allclose(there.coef_, here.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(there.scores_, here.scores_, rtol=1e-9)
    assert there.alpha_ == here.alpha_
