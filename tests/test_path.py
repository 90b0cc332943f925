"""Regularization paths: scikit-learn's enet_path and logistic fits at every point,
screening on and off, KKT conditions, the grid, dfmax."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import enet_path as sk_enet_path

from conftest import correlated_problem, objective, sklearn_reference
from elasticnet_dist import ElasticNet, enet_path
from elasticnet_dist.problem import Moments, make_problem, moments_request
from elasticnet_dist.solvers import routes
from elasticnet_dist.solvers.options import SolverOptions
from elasticnet_dist.solvers.path import alpha_grid, solve_path
from elasticnet_dist.sources import InMemorySource


def _problem(loss="squared", n=120, p=40, seed=0):
    return correlated_problem(n, p, seed=seed, loss=loss, scales=(0.1, 10), n_informative=8)


def kkt_violation(X, y, b, w, alpha, l1_ratio, loss):
    """Largest violation of the optimality conditions in the standardized
    coordinates, computed from scratch with NumPy."""
    m, sd = X.mean(0), X.std(0)
    Z = (X - m) / sd
    u = w * sd
    eta = b + X @ w
    r = eta - y if loss == "squared" else 1 / (1 + np.exp(-eta)) - y
    g = Z.T @ r / len(y) + alpha * (1 - l1_ratio) * u
    a = alpha * l1_ratio
    viol = np.where(u != 0, np.abs(g + a * np.sign(u)), np.maximum(np.abs(g) - a, 0))
    return float(max(viol.max(), abs(r.mean())))


@pytest.mark.parametrize("route", ["gram", "passes"])
@pytest.mark.parametrize("screening", [True, False])
def test_squared_path_matches_sklearn_enet_path(route, screening, monkeypatch):
    X, y = _problem(n=80, p=120, seed=1)  # p > n: supports grow to the number of rows
    Xc, yc = X - X.mean(0), y - y.mean()
    if route == "gram":  # the cost model would hesitate here: make the Gram route cheaper
        monkeypatch.setattr(routes, "route_seconds", lambda work: (0.0, 1.0))
    path = enet_path(X, y, l1_ratio=0.7, standardize=False, tol=1e-12, screening=screening,
                     gram_max_features=1000 if route == "gram" else 0, n_alphas=40)
    assert path.route == route
    assert path.n_passes == (1 if route == "gram" else path.n_passes)
    if route == "passes":  # pass reuse along the path; strong rules fetch columns early
        assert path.n_passes <= (1.5 if screening else 3) * len(path.alphas) + 1
    _, coefs, _ = sk_enet_path(Xc, yc, l1_ratio=0.7, alphas=path.alphas, tol=1e-14,
                               max_iter=1_000_000)
    for k, alpha in enumerate(path.alphas):
        ours = objective(X, y, path.intercepts[k], path.coefs[:, k], alpha, 0.7,
                         standardize=False)
        ref = objective(X, y, y.mean() - X.mean(0) @ coefs[:, k], coefs[:, k], alpha, 0.7,
                        standardize=False)
        assert ours <= ref + 1e-8 * ref, (k, ours, ref)
    assert path.n_features[0] == 0 < path.n_features[-1]


def test_default_grid_is_glmnets():
    X, y = _problem()
    path = enet_path(X, y, l1_ratio=0.5)
    assert len(path.alphas) == 100
    amax = path.alphas[0]
    assert path.n_features[0] == 0
    np.testing.assert_allclose(path.alphas[-1], 1e-3 * amax)  # n > p
    np.testing.assert_allclose(np.diff(np.log(path.alphas)), np.log(1e-3) / 99)
    # just below alpha_max a feature enters
    slightly = ElasticNet(alpha=amax * 0.99, l1_ratio=0.5, tol=1e-10).fit(X, y)
    assert np.count_nonzero(slightly.coef_) >= 1
    wide = enet_path(X[:30], y[:30], l1_ratio=0.5)
    np.testing.assert_allclose(wide.alphas[-1], 1e-2 * wide.alphas[0])  # p > n


def test_ridge_path_uses_glmnets_grid():
    X, y = _problem()
    ridge = enet_path(X, y, l1_ratio=0.0, n_alphas=10)
    lasso_ish = enet_path(X, y, l1_ratio=1e-3, n_alphas=10)
    np.testing.assert_allclose(ridge.alphas, lasso_ish.alphas)
    assert np.all(ridge.n_features == X.shape[1])
    with pytest.raises(ValueError, match="no feature can enter the path"):
        alpha_grid(np.inf)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_logistic_path_matches_sklearn_at_every_point(l1_ratio):
    X, y = _problem("logistic", n=150, p=15, seed=3)
    path = enet_path(X, y, loss="logistic", l1_ratio=l1_ratio, n_alphas=8, eps=0.05,
                     tol=1e-12)
    assert path.converged.all()
    for k in range(1, len(path.alphas), 2):
        alpha = path.alphas[k]
        b, w = sklearn_reference(X, y, alpha, l1_ratio, loss="logistic")
        ours = objective(X, y, path.intercepts[k], path.coefs[:, k], alpha, l1_ratio, "logistic")
        ref = objective(X, y, b, w, alpha, l1_ratio, "logistic")
        assert ours <= ref + 1e-6 * abs(ref)
        np.testing.assert_allclose(path.coefs[:, k], w, atol=1e-6 * np.abs(w).max() + 1e-9,
                                   rtol=1e-4)


def test_logistic_path_costs_about_one_pass_per_point():
    X, y = _problem("logistic", n=400, p=100, seed=7)
    path = enet_path(X, y, loss="logistic", l1_ratio=0.5, n_alphas=50)
    assert path.converged.all() and path.n_features[-1] > 10
    assert path.n_passes <= 100, path.n_passes


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_screening_never_changes_the_path_and_every_point_meets_kkt(loss):
    X, y = _problem(loss, n=100, p=60, seed=4)
    kw = dict(loss=loss, l1_ratio=0.8, n_alphas=30, tol=1e-12, gram_max_features=0)
    on, off = enet_path(X, y, screening=True, **kw), enet_path(X, y, screening=False, **kw)
    assert (on.coefs != 0).sum() > 0
    assert ((on.coefs != 0) == (off.coefs != 0)).all()
    np.testing.assert_allclose(on.coefs, off.coefs, atol=1e-4 * np.abs(off.coefs).max())
    for k, alpha in enumerate(on.alphas):
        f_on = objective(X, y, on.intercepts[k], on.coefs[:, k], alpha, 0.8, loss)
        f_off = objective(X, y, off.intercepts[k], off.coefs[:, k], alpha, 0.8, loss)
        assert abs(f_on - f_off) <= 1e-10 * f_off
        viol = kkt_violation(X, y, on.intercepts[k], on.coefs[:, k], alpha, 0.8, loss)
        assert viol < 1e-5, (k, viol)
    assert on.n_passes <= off.n_passes  # the strong set fetches what enters next


def test_max_features_stops_the_path_like_glmnets_dfmax():
    X, y = _problem(n=100, p=60, seed=5)
    full = enet_path(X, y, l1_ratio=1.0, n_alphas=50)
    cut = enet_path(X, y, l1_ratio=1.0, n_alphas=50, max_features=5)
    k = len(cut.alphas)
    assert k < 50
    assert cut.n_features[-1] > 5 and np.all(cut.n_features[:-1] <= 5)
    np.testing.assert_allclose(cut.coefs, full.coefs[:, :k], atol=1e-8)


def test_unpenalised_features_enter_at_every_point():
    X, y = _problem(n=100, p=20, seed=6)
    factors = np.ones(20)
    factors[3] = 0.0
    path = enet_path(X, y, l1_ratio=1.0, penalty_factor=factors, n_alphas=20)
    assert np.all(path.coefs[3] != 0)
    assert path.n_features[0] == 1  # alpha_max: only the free feature


def test_dense_lasso_path_end_converges():
    """Regression: the last 31 of 100 points of this lasso path (up to 833 features)
    stalled above the gap tolerance when the QP tolerance ignored the dual point's
    sensitivity to small KKT violations (newton._qp_tolerance)."""
    from elasticnet_dist.datasets import make_wide_table

    table = make_wide_table(5000, 1000, 25, seed=0)
    path = enet_path(table.X, table.y, l1_ratio=1.0)
    assert path.converged.all() and np.all(path.dual_gaps >= 0)
    assert path.n_features[-1] > 800 and path.n_passes == 1


def test_predicted_point_is_the_secant_and_predicts_no_sign_change():
    """The next point predicted from the last two: the secant in alpha, coordinates
    whose prediction changes sign at zero; exact on a lasso segment with a fixed
    support (the solution is affine in alpha there)."""
    from types import SimpleNamespace

    from elasticnet_dist.solvers.path import predicted_point

    def point(alpha, u):
        return SimpleNamespace(alpha=alpha, u=np.asarray(u, dtype=float))

    assert predicted_point([point(1.0, [1.0])], 0.5) is None
    before, last = point(1.0, [1.0, 3.0, 0.0, -0.2, 0.1]), point(0.8, [2.0, 2.0, 0.0, -0.1, 0.0])
    got = predicted_point([before, last], 0.6)
    np.testing.assert_allclose(got, [3.0, 1.0, 0.0, 0.0, 0.0])  # -0.1 -> 0.0 kept at 0.0

    X, y = _problem(n=200, p=10, seed=4)
    alphas = np.array([0.030, 0.029, 0.028])
    path = enet_path(X, y, l1_ratio=1.0, alphas=alphas, tol=1e-14)
    coefs = np.asarray(path.coefs).T  # (alphas, features)
    assert len({tuple(np.sign(c)) for c in coefs}) == 1  # one support and signs
    last_two = [point(a, c) for a, c in zip(alphas[:2], coefs[:2], strict=True)]
    predicted = predicted_point(last_two, alphas[2])
    np.testing.assert_allclose(predicted, coefs[2], rtol=1e-8, atol=1e-12)


def test_path_points_keep_the_sums_of_their_pass_not_its_gradient_or_hessian():
    """A cross-validation keeps (K + 1) L A points: with each pass's gradient (p) and
    Hessian block (h^2) kept too, a 2,000 x 500 logistic search peaked at 2.2 GB."""
    X, y = correlated_problem(200, 40, seed=8, loss="logistic", n_informative=6)
    source = InMemorySource(X, y)
    request, shift_x, shift_y = moments_request(source)
    moments = Moments.from_stats(source.run_pass(request), shift_x, shift_y)
    unit = make_problem(moments, "logistic", 1.0, 0.8, np.ones(40), True, True)
    alphas = alpha_grid(unit.alpha_max(), 15, 1e-2)
    points = solve_path(unit, alphas, source)
    kept = [pt.evaluation for pt in points if pt.evaluation is not None]
    assert len(kept) == len(points) and points[-1].n_selected > 0
    for stats in kept:
        assert "loss_sum" in stats and "weight_sum" in stats
        assert "grad" not in stats and not any(key.startswith("hess") for key in stats)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_a_path_solved_ahead_is_the_same_path_in_fewer_passes(loss):
    """Each step also solves the next alpha's model and the pass evaluates that point
    too: the pass certifying point k is point k + 1's first step. The points are the
    same to the solver's tolerance, every one certified, in far fewer passes."""
    X, y = correlated_problem(60, 400, seed=9, loss=loss, n_informative=6)
    source = InMemorySource(X, y)
    request, shift_x, shift_y = moments_request(source)
    moments = Moments.from_stats(source.run_pass(request), shift_x, shift_y)
    unit = make_problem(moments, loss, 1.0, 0.9, np.ones(400), True, True)
    alphas = alpha_grid(unit.alpha_max(), 40, 1e-2)
    options, counts = SolverOptions(tol=1e-10), {}
    for ahead in (False, True):
        before = source.n_passes
        counts[ahead] = (solve_path(unit, alphas, source, options=options, ahead=ahead),
                         source.n_passes - before)
    (plain, plain_passes), (solved, ahead_passes) = counts[False], counts[True]
    assert len(plain) == len(solved) == 40 and plain[-1].n_selected > 5
    assert all(pt.converged for pt in solved)
    assert ahead_passes <= 0.7 * plain_passes, (ahead_passes, plain_passes)
    scale = max(np.abs(pt.u).max() for pt in plain)
    for a, b in zip(plain, solved, strict=True):
        np.testing.assert_allclose(b.u, a.u, atol=1e-5 * scale)
        assert b.gap <= unit.at_alpha(b.alpha).gap_tolerance(1e-10)


def test_union_of_index_arrays_is_numpys():
    from elasticnet_dist.solvers.newton import union
    rng = np.random.default_rng(7)
    a, b = rng.choice(1000, 60), rng.choice(1000, 300)
    got = union(a, b, size=1000)
    assert got.dtype == np.intp and np.array_equal(got, np.union1d(a, b))
    assert union(np.zeros(0, dtype=np.intp), size=5).size == 0


def test_the_logistic_lookahead_keeps_the_features_nearest_their_l1_weight():
    from elasticnet_dist.penalty import ElasticNetPenalty
    from elasticnet_dist.solvers.newton import _closest_to_entering

    class _Problem:  # the solver reads the penalty only
        penalty = ElasticNetPenalty(np.array([1.0, 1.0, 2.0, 0.0, 1.0, 4.0]), np.zeros(6),
                                    np.zeros(6, dtype=bool))

    grad = np.array([0.5, 0.95, 1.0, 0.01, 0.2, 3.9])  # |g| / a: .5 .95 .5 inf .2 .975
    candidates = np.array([0, 1, 2, 3, 4, 5])
    assert np.array_equal(_closest_to_entering(_Problem, candidates, grad, 3), [1, 3, 5])
    assert np.array_equal(_closest_to_entering(_Problem, candidates, grad, 6), candidates)
