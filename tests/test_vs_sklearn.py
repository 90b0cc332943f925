"""Agreement with scikit-learn on seeded problems (objective and support).

Squared loss: scikit-learn's ElasticNet on explicitly standardized X; logistic
loss: LogisticRegression(solver="saga") likewise (conftest.sklearn_reference).
Both sides are evaluated on the independent objective of conftest.objective.
"""
import numpy as np
import pytest

from conftest import correlated_problem, objective, sklearn_reference
from elasticnet_dist import ElasticNet, alpha_max

L1_RATIOS = (0.0, 0.1, 0.5, 0.9, 1.0)


def _cases(loss, count):
    """``count`` problems cycling every factor with its own period, so that every
    l1_ratio meets both shapes and every flag takes both values."""
    shapes = [(120, 25), (40, 90)] if loss == "squared" else [(150, 12), (40, 60)]
    cases = []
    for i in range(count):
        n, p = shapes[i % 2]
        cases.append(dict(seed=i, l1_ratio=L1_RATIOS[i % 5], n=n, p=p,
                          fit_intercept=(i // 2) % 2 == 0, standardize=(i // 3) % 4 != 3,
                          weighted=(i // 4) % 2 == 1, correlation=(0.0, 0.8)[(i // 5) % 2]))
    return cases


def _support(w, sd):
    u = np.abs(w * sd)
    return u > 1e-7 * max(u.max(), 1e-300)


def _run(case, loss, rel_tol, solver="auto"):
    n, p = case["n"], case["p"]
    scales = (1e-3, 1e3) if loss == "squared" or case["standardize"] else (0.3, 3)
    X, y = correlated_problem(n, p, seed=case["seed"], correlation=case["correlation"],
                              scales=scales, loss=loss)
    s = np.random.default_rng(case["seed"]).uniform(0.2, 3.0, n) if case["weighted"] else None
    a_max = alpha_max(X, y, l1_ratio=max(case["l1_ratio"], 0.1), loss=loss, sample_weight=s,
                      fit_intercept=case["fit_intercept"], standardize=case["standardize"])
    frac = 0.05 if loss == "squared" else 0.15
    alpha = frac * a_max
    kw = dict(fit_intercept=case["fit_intercept"], standardize=case["standardize"])
    est = ElasticNet(alpha=alpha, l1_ratio=case["l1_ratio"], loss=loss, tol=1e-12,
                     solver=solver, max_iter=20000, **kw)
    est.fit(X, y, sample_weight=s)
    assert est.converged_ and est.dual_gap_ <= est.tol_
    b_ref, w_ref = sklearn_reference(X, y, alpha, case["l1_ratio"], loss, s, **kw)
    f = lambda b, w: objective(X, y, b, w, alpha, case["l1_ratio"], loss, s, case["standardize"])
    f_ours, f_ref = f(est.intercept_, est.coef_), f(b_ref, w_ref)
    assert abs(f_ours - f_ref) <= rel_tol * abs(f_ref), (f_ours, f_ref)
    sd = np.std(X, axis=0) if case["standardize"] else np.ones(p)
    np.testing.assert_array_equal(_support(est.coef_, sd), _support(w_ref, sd))
    return est


@pytest.mark.parametrize("solver", ["gram", "newton"])
@pytest.mark.parametrize("case", _cases("squared", 30), ids=lambda c: "seed%d" % c["seed"])
def test_squared_loss_matches_sklearn_elasticnet(case, solver):
    est = _run(case, "squared", 1e-8, solver)
    assert est.n_passes_ <= (1 if solver == "gram" else 30)


@pytest.mark.parametrize("case", _cases("logistic", 30), ids=lambda c: "seed%d" % c["seed"])
def test_logistic_loss_matches_sklearn_saga(case):
    est = _run(case, "logistic", 1e-6, "newton")
    assert est.n_passes_ <= 30


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("case", _cases("logistic", 10), ids=lambda c: "seed%d" % c["seed"])
def test_fista_matches_sklearn(case, loss):
    _run(case, loss, 1e-8 if loss == "squared" else 1e-6, "fista")
