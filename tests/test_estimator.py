"""The scikit-learn-style estimator: API contract, invariances, alpha_max, bad input."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import check_estimator

from conftest import correlated_problem, objective
from elasticnet_dist import ElasticNet, ElasticNetConvergenceWarning, alpha_max

LABELS_NOT_01 = ("the logistic loss takes labels 0 and 1 only (a ValueError names any other "
                 "label); this check fits labels such as {1, 2} or strings")


# ---- scikit-learn's own estimator checks ---------------------------------------------------
def test_check_estimator_squared_loss():
    check_estimator(ElasticNet(alpha=0.1))


def test_check_estimator_logistic_loss():
    expected = {name: LABELS_NOT_01 for name in (
        "check_estimators_dtypes", "check_sample_weights_pandas_series",
        "check_sample_weights_not_an_array", "check_sample_weights_shape",
        "check_sample_weights_not_overwritten", "check_classifier_data_not_an_array",
        "check_classifiers_classes", "check_fit2d_1feature")}
    results = check_estimator(ElasticNet(alpha=0.01, loss="logistic"),
                              expected_failed_checks=expected, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert not failed
    assert xfailed == set(expected)  # nothing listed passes by accident


# ---- fitted attributes and prediction -----------------------------------------------------
def test_fitted_attributes_and_selector_interface_with_pandas():
    X, y = correlated_problem(200, 15, seed=1)
    df = pd.DataFrame(X, columns=["g%02d" % j for j in range(15)])
    est = ElasticNet(alpha=0.2, l1_ratio=0.8).fit(df, y)
    support = est.coef_ != 0
    assert 0 < support.sum() < 15
    assert est.get_support().tolist() == support.tolist()
    assert list(est.get_feature_names_out()) == list(df.columns[support])
    np.testing.assert_allclose(est.coef_standardized_, est.coef_ * X.std(0), rtol=1e-12)
    assert est.converged_ and 0 <= est.dual_gap_ <= est.tol_ and est.n_passes_ >= 1
    assert set(est.timings_) == {"load", "statistics", "solve"}
    est.set_output(transform="pandas")
    out = est.transform(df)
    assert list(out.columns) == list(df.columns[support])
    np.testing.assert_allclose(est.predict(df), X @ est.coef_ + est.intercept_)
    assert est.score(df, y) > 0.5


def test_logistic_predictions():
    X, y = correlated_problem(300, 10, seed=2, loss="logistic", scales=(0.5, 2))
    est = ElasticNet(alpha=0.01, loss="logistic").fit(X, y)
    proba = est.predict_proba(X)
    eta = est.decision_function(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert set(np.unique(est.predict(X))) <= {0, 1}
    assert est.score(X, y) == np.mean(est.predict(X) == y)
    assert est.classes_.tolist() == [0, 1]
    assert not hasattr(ElasticNet(), "predict_proba")  # squared loss: no probabilities


def test_works_as_a_selector_in_a_pipeline_and_grid_search():
    X, y = correlated_problem(150, 30, seed=3)
    df = pd.DataFrame(X, columns=["c%d" % j for j in range(30)])
    pipe = make_pipeline(ElasticNet(alpha=0.1, l1_ratio=1.0), Ridge(alpha=1e-3))
    pipe.set_output(transform="pandas")
    search = GridSearchCV(pipe, {"elasticnet__alpha": [0.05, 0.3]}, cv=3).fit(df, y)
    sel = search.best_estimator_[0]
    assert list(search.best_estimator_[1].feature_names_in_) == list(sel.get_feature_names_out())


def test_cv_selector_and_logistic_selector_in_pipelines_keep_feature_names():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from elasticnet_dist import ElasticNetCV

    X, y = correlated_problem(240, 25, seed=8)
    df = pd.DataFrame(X, columns=["gene %d" % j for j in range(25)])
    pipe = make_pipeline(StandardScaler(), ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=20, cv=3),
                         Ridge(alpha=1e-3)).set_output(transform="pandas")
    search = GridSearchCV(pipe, {"elasticnetcv__selection": ["min", "1se"]}, cv=3).fit(df, y)
    best = search.best_estimator_
    cv_selector = best.named_steps["elasticnetcv"]
    kept = list(df.columns[cv_selector.coef_ != 0])
    assert list(best[:-1].get_feature_names_out()) == kept
    assert list(best[-1].feature_names_in_) == kept and 0 < len(kept) < 25
    assert list(best[:-1].transform(df).columns) == kept
    assert set(search.cv_results_["param_elasticnetcv__selection"]) == {"min", "1se"}

    Xl, yl = correlated_problem(300, 20, seed=9, loss="logistic", scales=(0.5, 2))
    dfl = pd.DataFrame(Xl, columns=["f%d" % j for j in range(20)])
    pipe = make_pipeline(ElasticNet(loss="logistic", l1_ratio=1.0), LogisticRegression())
    pipe.set_output(transform="pandas")
    grid = {"elasticnet__alpha": [0.01, 0.05], "elasticnet__l1_ratio": [0.5, 1.0]}
    search = GridSearchCV(pipe, grid, cv=3, scoring="accuracy").fit(dfl, yl)
    sel, clf = search.best_estimator_
    assert list(clf.feature_names_in_) == list(sel.get_feature_names_out())
    assert len(search.cv_results_["params"]) == 4 and search.best_score_ > 0.6


# ---- alpha_max --------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.4])
def test_alpha_max_is_the_exact_edge_of_the_empty_model(loss, l1_ratio):
    X, y = correlated_problem(200, 20, seed=4, loss=loss)
    amax = alpha_max(X, y, l1_ratio=l1_ratio, loss=loss)
    at = ElasticNet(alpha=amax, l1_ratio=l1_ratio, loss=loss, tol=1e-10).fit(X, y)
    assert not np.any(at.coef_)
    above = ElasticNet(alpha=2 * amax, l1_ratio=l1_ratio, loss=loss).fit(X, y)
    assert not np.any(above.coef_)
    below = ElasticNet(alpha=0.999 * amax, l1_ratio=l1_ratio, loss=loss, tol=1e-10).fit(X, y)
    assert np.count_nonzero(below.coef_) == 1
    # the feature that enters is the arg-max of the null model's standardized gradient
    mu = y.mean()
    Z = (X - X.mean(0)) / X.std(0)
    assert np.flatnonzero(below.coef_)[0] == np.argmax(np.abs(Z.T @ (y - mu)))


def test_alpha_max_with_unpenalised_features_and_ridge():
    X, y = correlated_problem(200, 20, seed=5)
    factors = np.ones(20)
    factors[[2, 7]] = 0.0
    amax = alpha_max(X, y, l1_ratio=1.0, penalty_factor=factors)
    at = ElasticNet(alpha=amax * 1.0001, l1_ratio=1.0, penalty_factor=factors, tol=1e-10).fit(X, y)
    assert np.flatnonzero(at.coef_).tolist() == [2, 7]  # only the unpenalised ones
    below = ElasticNet(alpha=amax * 0.99, l1_ratio=1.0, penalty_factor=factors, tol=1e-10).fit(X, y)
    assert np.count_nonzero(below.coef_) == 3
    assert alpha_max(X, y, l1_ratio=0.0) == np.inf


# ---- invariances ------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_scaling_a_column_divides_its_coefficient(loss):
    X, y = correlated_problem(200, 12, seed=6, loss=loss)
    base = ElasticNet(alpha=0.02, l1_ratio=0.7, loss=loss, tol=1e-12).fit(X, y)
    for j, c in ((0, 1e3), (5, 1e-3), (11, -7.0)):
        X2 = X.copy()
        X2[:, j] *= c
        est = ElasticNet(alpha=0.02, l1_ratio=0.7, loss=loss, tol=1e-12).fit(X2, y)
        assert np.array_equal(est.coef_ != 0, base.coef_ != 0)
        expect = base.coef_.copy()
        expect[j] /= c
        np.testing.assert_allclose(est.coef_, expect, rtol=1e-7, atol=1e-12 * np.abs(expect).max())


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_permuting_columns_permutes_coefficients(loss):
    X, y = correlated_problem(150, 40, seed=7, loss=loss)
    perm = np.random.default_rng(0).permutation(40)
    a = ElasticNet(alpha=0.03, l1_ratio=0.5, loss=loss, tol=1e-12).fit(X, y)
    b = ElasticNet(alpha=0.03, l1_ratio=0.5, loss=loss, tol=1e-12).fit(X[:, perm], y)
    np.testing.assert_allclose(b.coef_, a.coef_[perm], rtol=1e-8, atol=1e-12)
    assert b.intercept_ == pytest.approx(a.intercept_, rel=1e-9)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_duplicated_rows_with_half_weight_change_nothing(loss):
    X, y = correlated_problem(120, 30, seed=8, loss=loss)
    s = np.random.default_rng(1).uniform(0.5, 2, 120)
    a = ElasticNet(alpha=0.03, loss=loss, tol=1e-12).fit(X, y, sample_weight=s)
    b = ElasticNet(alpha=0.03, loss=loss, tol=1e-12).fit(
        np.vstack([X, X]), np.r_[y, y], sample_weight=np.r_[s, s] / 2)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-12)
    # and integer weights equal repeated rows
    k = np.random.default_rng(2).integers(1, 4, 120)
    c = ElasticNet(alpha=0.03, loss=loss, tol=1e-12).fit(X, y, sample_weight=k)
    d = ElasticNet(alpha=0.03, loss=loss, tol=1e-12).fit(np.repeat(X, k, 0), np.repeat(y, k))
    np.testing.assert_allclose(d.coef_, c.coef_, rtol=1e-8, atol=1e-12)


def test_constant_columns_get_zero_and_are_reported():
    X, y = correlated_problem(100, 6, seed=9)
    X[:, 2] = 4.2
    X[:, 4] = 0.0
    for intercept in (True, False):
        est = ElasticNet(alpha=0.01, fit_intercept=intercept).fit(X, y)
        assert est.coef_[2] == 0.0 and est.coef_[4] == 0.0
        assert est.constant_features_.tolist() == [False, False, True, False, True, False]


def test_alpha_zero_is_ordinary_least_squares():
    X, y = correlated_problem(80, 5, seed=10, scales=(0.5, 2))
    est = ElasticNet(alpha=0.0, tol=1e-14).fit(X, y)
    A = np.c_[np.ones(80), X]
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], ref, rtol=1e-8)


def test_unpenalised_features_always_stay():
    X, y = correlated_problem(100, 10, seed=11)
    factors = np.ones(10)
    factors[3] = 0.0
    est = ElasticNet(alpha=100.0, penalty_factor=factors).fit(X, y)
    assert np.flatnonzero(est.coef_).tolist() == [3]


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_all_solvers_agree(loss):
    X, y = correlated_problem(300, 60, seed=12, loss=loss, correlation=0.7)
    solvers = ["newton", "fista"] + (["gram"] if loss == "squared" else [])
    fits = {s: ElasticNet(alpha=0.02, l1_ratio=0.6, loss=loss, solver=s, tol=1e-12,
                          max_iter=20000).fit(X, y) for s in solvers}
    f = {s: objective(X, y, e.intercept_, e.coef_, 0.02, 0.6, loss) for s, e in fits.items()}
    ref = f["newton"]
    for s in solvers:
        assert abs(f[s] - ref) <= 1e-9 * ref
        assert np.array_equal(fits[s].coef_ != 0, fits["newton"].coef_ != 0)
    assert fits["newton"].n_passes_ < fits["fista"].n_passes_
    if loss == "squared":
        assert fits["gram"].n_passes_ == 1


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_newton_needs_few_passes_on_a_wide_problem(loss):
    X, y = correlated_problem(1000, 800, seed=13, loss=loss, correlation=0.5, n_informative=30)
    amax = alpha_max(X, y, l1_ratio=0.5, loss=loss)
    est = ElasticNet(alpha=0.05 * amax, l1_ratio=0.5, loss=loss, solver="newton").fit(X, y)
    assert 10 <= np.count_nonzero(est.coef_) < 800
    assert est.n_passes_ <= 30


# ---- convergence warning ----------------------------------------------------------------------
def test_non_convergence_warns_with_the_certificate():
    X, y = correlated_problem(100, 30, seed=14, correlation=0.9)
    with pytest.warns(ElasticNetConvergenceWarning) as record:
        est = ElasticNet(alpha=0.001, solver="fista", max_iter=3, tol=1e-12).fit(X, y)
    w = record[0].message
    assert w.gap == est.dual_gap_ > w.tol == est.tol_
    assert w.n_passes == est.n_passes_ == 4 and not est.converged_
    assert "duality gap" in str(w) and "max_iter" in str(w)


# ---- bad input ----------------------------------------------------------------------------------
def _xy():
    X, y = correlated_problem(50, 4, seed=15)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


@pytest.mark.parametrize("params, match", [
    (dict(l1_ratio=1.5), "l1_ratio"),
    (dict(l1_ratio=-0.1), "l1_ratio"),
    (dict(alpha=-1.0), "alpha"),
    (dict(alpha=np.nan), "alpha"),
    (dict(alpha="big"), "alpha"),
    (dict(loss="hinge"), "loss='hinge'.*squared"),
    (dict(solver="cd"), "solver='cd'"),
    (dict(solver="gram", loss="logistic"), "solver='gram'"),
    (dict(max_iter=0), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(penalty_factor=[1, 1, 1]), "penalty_factor"),
    (dict(penalty_factor=[1, -1, 1, 1]), "penalty_factor"),
    (dict(fit_intercept="yes"), "fit_intercept"),
])
def test_bad_parameters_are_named(params, match):
    X, y = _xy()
    if params.get("loss") == "logistic":
        y = (y > np.median(y)).astype(float)
    with pytest.raises(ValueError, match=match):
        ElasticNet(**params).fit(X, y)


def test_bad_data_is_named():
    X, y = _xy()
    Xn = X.copy()
    Xn.loc[3, "c"] = np.nan
    with pytest.raises(ValueError, match=r"column 'c' has 1 NaN"):
        ElasticNet().fit(Xn, y)
    Xi = X.to_numpy().copy()
    Xi[7, 1] = np.inf
    with pytest.raises(ValueError, match=r"column 'x1' has 0 NaN and 1 inf"):
        ElasticNet().fit(Xi, y)
    Xo = X.to_numpy().copy()
    Xo[0, 3] = 1e200  # finite, but its square overflows
    with pytest.raises(ValueError, match=r"column 'x3' overflows float64"):
        ElasticNet().fit(Xo, y)
    yi = y.copy()
    yi[2] = np.inf
    with pytest.raises(ValueError, match="y has 1 NaN or inf"):
        ElasticNet().fit(X, yi)
    with pytest.raises(ValueError, match="y has 49 rows; X has 50"):
        ElasticNet().fit(X, y[:-1])
    with pytest.raises(ValueError, match="sample_weight has 10 rows"):
        ElasticNet().fit(X, y, sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="sample_weight must be >= 0; row 0"):
        ElasticNet().fit(X, y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="sample_weight is zero for every row"):
        ElasticNet().fit(X, y, sample_weight=np.zeros(50))
    with pytest.raises(ValueError, match="sample_weight has 1 NaN"):
        ElasticNet().fit(X, y, sample_weight=np.r_[np.nan, np.ones(49)])


def test_non_numeric_columns_are_named():
    X, y = _xy()
    X["city"] = ["x"] * 50
    X["when"] = pd.Timestamp("2026-01-01")
    with pytest.raises(ValueError,
                       match=r"2 non-numeric column\(s\): 'city' \((object|str)\), 'when'"):
        ElasticNet().fit(X, y)
    ok = X.drop(columns=["city", "when"]).assign(flag=True, count=pd.array([1] * 50, "Int64"))
    assert ElasticNet(alpha=0.1).fit(ok, y).n_features_in_ == 6


def test_bad_logistic_labels_are_named():
    X, y = _xy()
    with pytest.raises(ValueError, match=r"labels 0 and 1.*found \[0, 2\]"):
        ElasticNet(loss="logistic").fit(X, np.where(y > 0, 2, 0))
    with pytest.raises(ValueError, match="single class"):
        ElasticNet(loss="logistic").fit(X, np.ones(50))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        ElasticNet(loss="logistic").fit(X, y)
    ok = ElasticNet(loss="logistic", alpha=0.01).fit(X, y > np.median(y))  # booleans are 0/1
    assert ok.converged_


def test_no_warning_on_a_clean_fit():
    X, y = _xy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ElasticNet(alpha=0.1).fit(X, y)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("solver", ["newton", "fista"])
def test_warm_start_from_the_solution_costs_almost_nothing(loss, solver):
    X, y = correlated_problem(400, 300, seed=16, loss=loss)
    est = ElasticNet(alpha=0.05, loss=loss, solver=solver, tol=1e-10, warm_start=True,
                     max_iter=20000)
    est.fit(X, y)
    cold = est.n_passes_
    coef = est.coef_.copy()
    est.fit(X, y)
    assert est.n_passes_ <= 3 < cold
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-6, atol=1e-9 * np.abs(coef).max())
    est.set_params(alpha=0.04).fit(X, y)  # a nearby alpha also starts close
    assert est.converged_
    if solver == "newton":  # (FISTA re-learns its Lipschitz estimate, which costs passes)
        assert est.n_passes_ < cold


@pytest.mark.parametrize("kw, match", [(dict(l1_ratio=1.5), "l1_ratio"),
                                       (dict(loss="poisson"), "loss='poisson'"),
                                       (dict(penalty_factor=[1.0]), "penalty_factor")])
def test_alpha_max_validates_its_parameters(kw, match):
    X, y = _xy()
    with pytest.raises(ValueError, match=match):
        alpha_max(X, y, **kw)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_memory_layout_does_not_change_the_answer(loss):
    """Row-major and column-major X (pandas hands out the latter) take different gathers."""
    X, y = correlated_problem(500, 120, seed=17, loss=loss)
    kw = dict(alpha=0.02, loss=loss, solver="newton", tol=1e-12, block_rows=64)
    a = ElasticNet(**kw).fit(np.ascontiguousarray(X), y)
    b = ElasticNet(**kw).fit(np.asfortranarray(X), y)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-10, atol=1e-14)
    assert a.n_passes_ == b.n_passes_


def test_penalty_factor_by_column_name_on_a_dataframe():
    X, y = correlated_problem(200, 6, seed=3)
    df = pd.DataFrame(X, columns=list("abcdef"))
    by_name = ElasticNet(alpha=0.5, penalty_factor={"c": 0.0}, tol=1e-10).fit(df, y)
    by_array = ElasticNet(alpha=0.5, penalty_factor=[1, 1, 0, 1, 1, 1], tol=1e-10).fit(X, y)
    np.testing.assert_allclose(by_name.coef_, by_array.coef_, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"penalty_factor names 1 column\(s\) that are not "
                       r"features: \['z'\]"):
        ElasticNet(penalty_factor={"z": 0.0}).fit(df, y)
