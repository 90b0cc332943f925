"""The pure mathematics: prox, loss derivatives, moments, passes and the duality gap."""
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from conftest import correlated_problem, objective
from elasticnet_dist.sources import InMemorySource
from elasticnet_dist.losses import Logistic, Poisson, Squared, get_loss
from elasticnet_dist.passes import HessianBlock, PassRequest, block_stats
from elasticnet_dist.reduction import merge_stats, tree_merge
from elasticnet_dist.penalty import (ElasticNetPenalty, build_penalty, native_to_peer,
                                     peer_to_native)
from elasticnet_dist.problem import Moments, make_problem, moments_request
from elasticnet_dist.solvers import fit_elastic_net
from elasticnet_dist.sufficient import SufficientStatistics


# ---- proximal operator ------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_prox_matches_brute_force_minimisation(seed):
    rng = np.random.default_rng(seed)
    k = 40
    a = rng.choice([0.0, 0.3, 2.0], k) * rng.uniform(0.1, 3, k)
    c = rng.choice([0.0, 0.5, 4.0], k) * rng.uniform(0.1, 3, k)
    pen = ElasticNetPenalty(a, c, np.zeros(k, bool))
    z = rng.normal(0, 3, k)
    step = rng.uniform(0.05, 2.0)
    got = pen.prox(z.copy(), step)
    for j in range(k):
        def f(x, j=j):
            return (x - z[j]) ** 2 / (2 * step) + a[j] * abs(x) + 0.5 * c[j] * x * x
        ref = minimize_scalar(f, bracket=(-20, 20), method="brent", tol=1e-14).x
        assert f(got[j]) <= f(ref) + 1e-12
        assert got[j] == pytest.approx(ref, abs=1e-6)
        if abs(z[j]) <= step * a[j]:
            assert got[j] == 0.0  # exact zeros inside the threshold


def test_prox_holds_fixed_coordinates_at_zero():
    pen = ElasticNetPenalty(np.zeros(3), np.zeros(3), np.array([False, True, False]))
    assert pen.prox(np.array([1.0, 5.0, -2.0]), 1.0).tolist() == [1.0, 0.0, -2.0]


# ---- losses --------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [Squared, Logistic, Poisson])
def test_loss_derivatives_match_finite_differences(loss):
    rng = np.random.default_rng(0)
    eta = rng.normal(0, 3, 200)
    y = {Logistic: rng.integers(0, 2, 200).astype(float), Squared: rng.normal(0, 2, 200),
         Poisson: rng.poisson(3.0, 200).astype(float)}[loss]
    h = 1e-6
    fd1 = (loss.value(y, eta + h) - loss.value(y, eta - h)) / (2 * h)
    fd2 = (loss.derivative(y, eta + h) - loss.derivative(y, eta - h)) / (2 * h)
    np.testing.assert_allclose(loss.derivative(y, eta), fd1, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(loss.curvature(y, eta), fd2, rtol=1e-7, atol=1e-7)
    assert np.all(loss.curvature(y, eta) <= loss.max_curvature + 1e-15)


def test_logistic_loss_is_stable_for_large_predictors():
    eta = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    v = Logistic.value(y, eta)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(Logistic.derivative(y, eta)))
    assert v[0] == pytest.approx(0.0, abs=1e-300) and v[3] == pytest.approx(40.0)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="hinge"):
        get_loss("hinge")


@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_pass_gradient_matches_finite_differences_of_the_objective(loss):
    X, y = correlated_problem(60, 8, seed=3, loss=loss, scales=(0.5, 2))
    s = np.random.default_rng(1).uniform(0.5, 2, 60)
    w = np.random.default_rng(2).normal(0, 0.3, 8)
    b = 0.2
    req = PassRequest(loss=loss, coefs=w[None], intercepts=np.array([b]))
    st = block_stats(X, y, s, req)
    grad = st["grad"][0] / st["weight_sum"]
    f = lambda ww, bb: objective(X, y, bb, ww, 0.0, 1.0, loss, s)
    h = 1e-6
    fd = np.array([(f(w + h * e, b) - f(w - h * e, b)) / (2 * h) for e in np.eye(8)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    assert st["grad_sum"][0] / st["weight_sum"] == pytest.approx(
        (f(w, b + h) - f(w, b - h)) / (2 * h), abs=1e-7)


def test_pass_hessian_block_matches_finite_differences_of_the_gradient():
    """Moving w_k by d and b by -c_k d shifts eta by d (x_k - c_k); the centred
    gradient (X - c)' s l' then changes by the k-th column of the Hessian block."""
    X, y = correlated_problem(80, 6, seed=4, loss="logistic", scales=(0.5, 2))
    s = np.ones(80)
    w, b = np.random.default_rng(0).normal(0, 0.3, 6), 0.1
    H = np.array([1, 3, 4])
    center = X.mean(0)
    req = PassRequest(loss="logistic", coefs=w[None], intercepts=np.array([b]),
                      hessians=(HessianBlock(H, center=center),))
    hess = block_stats(X, y, s, req)["hess.0"]

    def centred_gradient(k, d):
        dw = np.zeros(6)
        dw[k] = d
        st = block_stats(X, y, s, PassRequest(loss="logistic", coefs=(w + dw)[None],
                                              intercepts=np.array([b - center[k] * d])))
        return st["grad"][0][H] - center[H] * st["grad_sum"][0]

    h = 1e-6
    for col, k in enumerate(H):
        fd = (centred_gradient(k, h) - centred_gradient(k, -h)) / (2 * h)
        np.testing.assert_allclose(hess[:, col], fd, rtol=1e-5, atol=1e-7)


# ---- passes and sufficient statistics ---------------------------------------------------------
def test_pass_results_do_not_depend_on_the_blocking():
    X, y = correlated_problem(300, 20, seed=5)
    s = np.random.default_rng(0).uniform(0, 2, 300)
    w = np.random.default_rng(1).normal(0, 1e-2, 20)
    req = PassRequest(loss="squared", coefs=np.vstack([w, 2 * w]), intercepts=np.array([1.0, 0.0]),
                      hessians=(HessianBlock(np.array([0, 5, 7]), np.array([0, 5]), X.mean(0)),))
    one = InMemorySource(X, y, s).run_pass(req)
    for rows in (1, 7, 64):
        many = InMemorySource(X, y, s, block_rows=rows).run_pass(req)
        assert many.keys() == one.keys()
        for key in one:
            np.testing.assert_allclose(many[key], one[key], rtol=1e-11, atol=1e-9)


def test_tree_merge_equals_the_ordered_sum_and_skips_empty_blocks():
    rng = np.random.default_rng(4)
    parts = [{"a": rng.standard_normal(3), "n": np.float64(i)} for i in range(19)]
    parts.insert(5, None)
    merged = tree_merge(parts, fan_in=4)
    np.testing.assert_allclose(merged["a"], merge_stats(parts)["a"], rtol=1e-14)
    assert merged["n"] == sum(range(19))


def test_owned_merge_sums_into_its_parts_with_the_same_bits():
    """Parts received for the merge are summed in place (no copy of the first);
    others are left as they were; a read-only part (as a transport may hand it
    over) is copied rather than written."""
    rng = np.random.default_rng(9)
    parts = [{"g": rng.standard_normal((4, 4)), "n": np.float64(i)} for i in range(11)]
    frozen = parts[0]["g"].copy()
    frozen.flags.writeable = False
    parts[0]["g"] = frozen
    copies = [{k: np.copy(v) for k, v in part.items()} for part in parts]
    expected = tree_merge(parts, fan_in=4)
    assert all(np.array_equal(a["g"], b["g"]) for a, b in zip(parts, copies, strict=True))
    owned = [{k: np.copy(v) for k, v in part.items()} for part in parts]
    first = owned[0]["g"]
    got = tree_merge(owned, fan_in=4, owned=True)
    np.testing.assert_array_equal(got["g"], expected["g"])
    assert got["n"] == expected["n"]
    assert got["g"] is first  # summed into the first part's array
    readonly = [{k: np.copy(v) for k, v in part.items()} for part in parts]
    readonly[0]["g"].flags.writeable = False
    np.testing.assert_array_equal(tree_merge(readonly, fan_in=4, owned=True)["g"],
                                  expected["g"])


@pytest.mark.parametrize("n_parts", [1, 5, 8, 17, 70])
def test_a_node_given_for_each_group_leaves_the_tree_and_its_bits_alone(n_parts):
    """Engines may make each level-1 node (a group of ``fan_in`` consecutive parts)
    themselves (a statistics store answers for one with a file): the tree asks for
    each whole group in a run once, takes no part of it, and sums the same bits."""
    from elasticnet_dist.reduction import grouped_tree_merge, merge_group, subtrees

    rng = np.random.default_rng(n_parts)
    parts = [{"g": rng.standard_normal((3, 3)) * 10.0 ** rng.integers(-8, 8)}
             for _ in range(n_parts)]
    expected = tree_merge(parts, fan_in=4)
    asked, taken = [], []

    def group(first, stop):
        asked.append((first, stop))
        return merge_group(parts[first:stop])

    class Parts(list):
        def __getitem__(self, i):
            taken.append(i)
            return list.__getitem__(self, i)

    got = grouped_tree_merge(n_parts, lambda first, stop: Parts(parts[first:stop]),
                             fan_in=4, group=group)
    np.testing.assert_array_equal(got["g"], expected["g"])
    whole = [(i, min(n_parts, i + 4)) for i in range(0, n_parts, 4)] if n_parts > 1 else []
    assert asked == whole and taken == ([0] if n_parts == 1 else [])
    # a run that starts inside a group (a Spark slot's): only its whole groups are asked
    asked.clear()
    if n_parts > 6:
        nodes = subtrees(parts[6:], 6, n_parts, fan_in=4, group=group)
        assert all(first >= 8 for first, _ in asked) and (0, 6) in nodes


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("c", [1.0, 1.0005])
def test_native_to_peer_inverts_peer_to_native(loss, c):
    for alpha, l1_ratio in [(0.3, 0.5), (2.0, 1.0), (0.01, 0.0), (0.0, 0.4)]:
        lam, a = native_to_peer(alpha, l1_ratio, loss=loss, sd_y=2.5, variance_correction=c)
        back = peer_to_native(lam, a, loss=loss, sd_y=2.5, variance_correction=c)
        assert back == pytest.approx((alpha, l1_ratio), rel=1e-12, abs=1e-15)


def test_merge_of_no_blocks_is_an_error():
    with pytest.raises(ValueError, match="at least one block"):
        merge_stats([])


def test_moments_are_accurate_for_columns_far_from_zero():
    rng = np.random.default_rng(0)
    X = 1e8 + rng.standard_normal((1000, 3)) * np.array([1.0, 1e-3, 1e3])
    y = 5e6 + rng.standard_normal(1000)
    src = InMemorySource(X, y, block_rows=100)
    req, sx, sy = moments_request(src)
    m = Moments.from_stats(src.run_pass(req), sx, sy)

    def exact_sd(v):  # exact rational arithmetic, rounded once at the end
        q = [Fraction(x) for x in v]
        mean = sum(q) / len(q)
        return math.sqrt(sum((x - mean) ** 2 for x in q) / len(q))

    np.testing.assert_allclose(np.sqrt(m.var_x), [exact_sd(X[:, j]) for j in range(3)],
                               rtol=1e-12)
    assert np.sqrt(m.var_y) == pytest.approx(exact_sd(y), rel=1e-12)
    np.testing.assert_allclose(m.mean_x, [math.fsum(X[:, j]) / 1000 for j in range(3)],
                               rtol=1e-15)


def test_sufficient_statistics_answer_passes_like_the_rows_do():
    X, y = correlated_problem(200, 12, seed=6)
    s = np.random.default_rng(0).uniform(0.1, 3, 200)
    src = InMemorySource(X, y, s, block_rows=33)
    req, sx, sy = moments_request(src, full_gram=True)
    stats = SufficientStatistics(Moments.from_stats(src.run_pass(req), sx, sy))
    w = np.random.default_rng(3).normal(0, 1e-2, (2, 12))
    for center in (X.mean(0) * 0.9, None):
        q = PassRequest(loss="squared", coefs=w, intercepts=np.array([0.5, -1.0]),
                        hessians=(HessianBlock(np.array([1, 2, 3, 11]), np.array([2, 3]),
                                               center),))
        a, b = src.run_pass(q), stats.run_pass(q)
        for key in ("loss_sum", "grad", "grad_sum", "hess.0", "hess_col_sums.0", "hess_sum.0"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-9 * np.abs(a[key]).max())
    assert stats.n_passes == 0


# ---- duality gap ------------------------------------------------------------------------------
def _problem(loss, l1_ratio, alpha_frac, fit_intercept=True, standardize=True, factors=None,
             seed=0, n=120, p=30):
    X, y = correlated_problem(n, p, seed=seed, loss=loss, scales=(0.1, 10))
    src = InMemorySource(X, y)
    req, sx, sy = moments_request(src)
    m = Moments.from_stats(src.run_pass(req), sx, sy)
    v = np.ones(p) if factors is None else factors
    probe = make_problem(m, loss, 1.0, max(l1_ratio, 0.05), v, fit_intercept, standardize)
    alpha = alpha_frac * probe.alpha_max()
    return X, y, src, make_problem(m, loss, alpha, l1_ratio, v, fit_intercept,
                                   standardize), alpha


@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
@pytest.mark.parametrize("l1_ratio", [0.0, 0.3, 1.0])
def test_gap_bounds_the_suboptimality_at_random_points(loss, l1_ratio):
    X, y, src, prob, alpha = _problem(loss, l1_ratio, 0.2, fit_intercept=False)
    best = fit_elastic_net(src, loss=loss, alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False,
                           tol=1e-14)
    F_star = best.result.objective
    rng = np.random.default_rng(1)
    u_star = best.result.u
    for t in range(25):
        u = u_star + rng.normal(0, 0.3, u_star.size) * (rng.random(u_star.size) < 0.5)
        if t % 3 == 0:
            u = u_star * rng.uniform(0, 2)
        ev = prob.evaluate(src.run_pass(prob.request([(u, 0.0)])))[0]
        gap = prob.duality_gap(u, ev.grad, ev.loss)
        F = prob.objective(ev.loss, u)
        assert gap >= 0.0
        assert gap >= F - F_star - 1e-12 * abs(F_star)
    ev = prob.evaluate(src.run_pass(prob.request([(u_star, 0.0)])))[0]
    assert prob.duality_gap(u_star, ev.grad, ev.loss) <= prob.gap_tolerance(1e-12)


@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_gap_is_non_negative_with_intercept_and_unpenalised_features(loss):
    factors = np.ones(30)
    factors[:3] = 0.0
    X, y, src, prob, alpha = _problem(loss, 0.7, 0.3, factors=factors)
    rng = np.random.default_rng(2)
    for _ in range(20):
        u = rng.normal(0, 0.5, 30) * (rng.random(30) < 0.3)
        b = prob.null_intercept + rng.normal(0, 0.2)
        ev = prob.evaluate(src.run_pass(prob.request([(u, b)])))[0]
        assert prob.duality_gap(u, ev.grad, ev.loss, ev.grad_b) >= 0.0


def test_constant_columns_are_fixed_at_zero_in_the_penalty():
    sd = np.array([1.0, 0.0, 2.0])
    fixed = sd == 0
    pen = build_penalty(0.5, 0.5, np.ones(3), sd, False, fixed)
    assert pen.fixed.tolist() == [False, True, False]
    assert pen.l1[1] == 0.0 and pen.l2[1] == 0.0
    # standardize=False: the penalty on w becomes a per-coordinate penalty on u = sd * w
    assert pen.l1[2] == pytest.approx(0.25 / 2.0) and pen.l2[2] == pytest.approx(0.25 / 4.0)


# ---- the driver-side quadratic solver ---------------------------------------------------------
@pytest.mark.parametrize("k, rank", [(30, 30), (60, 20), (600, 600)])
def test_quadratic_solver_meets_the_optimality_conditions(k, rank):
    from elasticnet_dist.solvers.quadratic import solve_qp

    rng = np.random.default_rng(k)
    A = rng.standard_normal((max(rank, 1), k)) * np.logspace(-1, 1, k)
    Q = A.T @ A / rank  # positive semi-definite, singular when rank < k
    r = rng.normal(0, 2, k)
    a = rng.choice([0.0, 0.5, 2.0], k)
    c = rng.choice([0.0, 0.1, 1.0], k)
    fixed = rng.random(k) < 0.05
    pen = ElasticNetPenalty(a, c, fixed)
    if rank < k:  # keep the problem bounded below: no unpenalised direction in Q's null space
        pen = ElasticNetPenalty(np.maximum(a, 0.5), c, fixed)
    res = solve_qp(Q, r, pen, tol=1e-11, max_iter=50_000)
    x = res.x
    assert np.all(x[pen.fixed] == 0.0)
    assert np.max(pen.violation(x, Q @ x + r)) <= 1e-9
    # optimality also means no random feasible perturbation improves the objective
    q = lambda z: 0.5 * z @ Q @ z + r @ z + pen.value(z)
    for _ in range(20):
        z = x + rng.normal(0, 1e-3, k) * ~pen.fixed
        assert q(z) >= q(x) - 1e-12


def test_masked_support_solve_equals_the_solve_on_the_submatrix():
    """CG on the whole working-set matrix with the coordinates off the support held
    at zero solves the same system as a direct solve on the gathered submatrix."""
    from elasticnet_dist.solvers.quadratic import _linear_solve, _masked_solve

    rng = np.random.default_rng(11)
    m = 400
    A = rng.standard_normal((600, m))
    Q = A.T @ A / 600
    c = np.full(m, 0.05)
    support = rng.random(m) < 0.85
    idx = np.flatnonzero(support)
    b = np.zeros(m)
    b[idx] = rng.standard_normal(idx.size)
    x0 = rng.standard_normal(m) * 0.01  # entries off the support must be ignored
    masked, product = _masked_solve(Q, c, b, x0, 1e-11, support)
    direct, _ = _linear_solve(Q[np.ix_(idx, idx)], c[idx], b[idx], None, 0.0)
    assert masked is not None and masked.shape == (idx.size,)
    np.testing.assert_allclose(masked, direct, rtol=0, atol=1e-9)
    # the product handed back for the gradient: Q x on every row, x zero off the support
    full = np.zeros(m)
    full[idx] = masked
    np.testing.assert_array_equal(product, Q @ full)
    residual = Q[np.ix_(idx, idx)] @ masked + c[idx] * masked - b[idx]
    assert np.max(np.abs(residual)) <= 1e-11


def test_gram_cache_grows_in_place_and_keeps_every_entry():
    """Features join the cache a few at a time (past several regrowths of its
    buffer): G always equals the Gram matrix of the cached features in their order."""
    from elasticnet_dist.solvers.newton import GramCache

    rng = np.random.default_rng(5)
    Z = rng.standard_normal((50, 300))
    full = Z.T @ Z
    cache = GramCache()
    for new in np.array_split(rng.permutation(300)[:280], 17):
        assert np.array_equal(cache.missing(np.concatenate([cache.idx[:3], new])), new)
        cols = np.concatenate([cache.idx, new])
        cache.extend(new, full[np.ix_(new, cols)])
        np.testing.assert_array_equal(cache.G, full[np.ix_(cache.idx, cache.idx)])
    H = cache.idx[::7]
    np.testing.assert_array_equal(cache.block(H), full[np.ix_(H, H)])


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_gram_product_of_sparse_and_dense_points_equals_the_full_product(layout):
    """Supports below and above the gather share (rows gathered, or one triangle
    read), for every layout of the Gram matrix: ``w @ C`` to rounding."""
    from elasticnet_dist.sufficient import GATHER_SHARE, gram_product

    rng = np.random.default_rng(11)
    p = 120
    Z = rng.standard_normal((200, p))
    C = Z.T @ Z / 200
    C = 0.5 * (C + C.T)
    if layout == "F":
        C = np.asfortranarray(C)
    elif layout == "strided":
        wide = np.zeros((p, p + 7))
        wide[:, :p] = C
        C = wide[:, :p]
    sizes = [0, 1, int(GATHER_SHARE * p) - 1, int(GATHER_SHARE * p) + 1, p // 2, p]
    for size in sizes:
        w = np.zeros(p)
        w[rng.permutation(p)[:size]] = rng.standard_normal(size)
        np.testing.assert_allclose(gram_product(C, w), w @ C, rtol=0,
                                   atol=1e-13 * np.abs(C).max() * p)


@pytest.mark.parametrize("p", [1, 255, 256, 257, 600])
def test_symmetric_grams_completes_every_matrix_tile_by_tile(p):
    """G += strictly_lower(G)' for each stacked matrix, across tile borders: the
    same bits as the one-transpose formula, and lower-triangular sums made symmetric."""
    from elasticnet_dist.passes import pack_lower, symmetric_grams

    rng = np.random.default_rng(p)
    grams = rng.standard_normal((2, 3, p, p))
    grams[0] = np.tril(grams[0])
    expected = grams.copy()
    for G in expected.reshape((-1, p, p)):
        G += np.tril(G, -1).T
    lower = np.tril(grams[0])
    got = symmetric_grams({"gram": grams, "n_rows": np.ones(2)})["gram"]
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(got[0], np.swapaxes(got[0], -1, -2))
    # as a pass returns them: the lower triangles packed row after row, half the numbers
    packed = np.zeros((3, p * (p + 1) // 2))
    for f in range(3):
        pack_lower(lower[f], packed[f])
    assert np.count_nonzero(packed) == np.count_nonzero(lower)
    stats = symmetric_grams({"gram_lower": packed, "n_rows": np.ones(3)})
    assert "gram_lower" not in stats
    np.testing.assert_array_equal(stats["gram"], expected[0])


# ---- what a path point no longer recomputes ---------------------------------------------
def test_a_scaled_penalty_hands_on_masks_equal_to_its_own_and_the_same_conjugate():
    """``scaled`` carries the masks (they depend on which weights are zero only), and the
    conjugate as one dot product equals the sum over ridge coordinates."""
    rng = np.random.default_rng(3)
    k = 300
    l1 = rng.choice([0.0, 0.4, 1.0], k) * rng.uniform(0.5, 2, k)
    l2 = rng.choice([0.0, 0.3], k) * rng.uniform(0.5, 2, k)
    fixed = rng.random(k) < 0.05
    pen = ElasticNetPenalty(np.where(fixed, 0, l1), np.where(fixed, 0, l2), fixed)
    scaled = pen.scaled(0.37)
    fresh = ElasticNetPenalty(pen.l1 * 0.37, pen.l2 * 0.37, fixed)
    for key in ElasticNetPenalty._MASKS:
        assert key in scaled.__dict__
        assert np.array_equal(scaled.__dict__[key], getattr(fresh, key)), key
    q = rng.normal(0, 1, k)
    ridge = fresh._ridge
    excess = np.maximum(np.abs(q[ridge]) - fresh.l1[ridge], 0.0)
    reference = float(np.sum(excess * excess / (2.0 * fresh.l2[ridge])))
    assert scaled.conjugate(q) == pytest.approx(reference, rel=1e-13)
    assert scaled.has_ridge and scaled.has_pure_l1 and scaled.has_l1


def test_points_of_a_path_share_the_null_gradient_and_cannot_alter_it():
    X, y = correlated_problem(80, 30, seed=4)[:2]
    source = InMemorySource(X, y)
    request, sx, sy = moments_request(source)
    moments = Moments.from_stats(source.run_pass(request), sx, sy)
    unit = make_problem(moments, "squared", 1.0, 0.5, np.ones(30), True, True)
    point = unit.at_alpha(0.25)
    assert point.derived is unit.derived
    g = point.null_gradient()
    assert np.array_equal(g, unit._null_gradient())
    g[:] = 7.0  # a caller's copy
    assert np.array_equal(unit.null_gradient(), unit._null_gradient())
    assert unit.null_gradient_max() == float(np.max(np.abs(unit._null_gradient())))


def test_a_pass_over_sparse_points_equals_the_dense_product(monkeypatch):
    """The linear predictors of points that are zero on most columns come from those
    columns only: the same sums as the full product, to rounding."""
    from elasticnet_dist import passes
    rng = np.random.default_rng(5)
    X = np.asfortranarray(rng.standard_normal((40, 500)))
    y = (rng.random(40) < 0.5).astype(float)
    coefs = np.zeros((3, 500))
    coefs[:, rng.choice(500, 12, replace=False)] = rng.standard_normal((3, 12))
    request = PassRequest(loss="logistic", coefs=coefs, intercepts=np.array([0.1, 0, -0.2]),
                          hessians=(HessianBlock(cols=np.arange(0, 500, 7), point=1),))
    sparse = block_stats(X, y, np.ones(40), request)
    monkeypatch.setattr(passes, "SPARSE_POINTS_SHARE", 0)  # always the full product
    dense = block_stats(X, y, np.ones(40), request)
    assert sparse.keys() == dense.keys()
    for key in dense:
        np.testing.assert_allclose(sparse[key], dense[key], rtol=1e-12, atol=1e-12)


def test_wide_blocks_are_column_major_and_tall_ones_row_major():
    from elasticnet_dist import _validation as v
    from elasticnet_dist.engines.local import LocalEngine
    from elasticnet_dist.loading import load_table
    rng = np.random.default_rng(6)
    for n, p, fortran in ((30, 200, True), (300, 20, False)):
        X, y = rng.standard_normal((n, p)), rng.standard_normal(n)
        engine = LocalEngine()
        load_table(v.arrays_as_table(X, y, None, ["x%d" % j for j in range(p)])[0], engine,
                   label=v.LABEL, n_folds=3)
        block = engine._blocks[0]
        assert block.X.flags.f_contiguous == fortran and block.X.flags.c_contiguous != fortran
        assert block.X.shape == (n, p)
