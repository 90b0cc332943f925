"""ElasticNetCV: scikit-learn's ElasticNetCV given the same folds, passes per grid,
folds that do not depend on engine or partitioning, the selection rules."""
from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest
import sklearn
from sklearn.linear_model import ElasticNetCV as SkElasticNetCV
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import KFold

from conftest import correlated_problem
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.errors import BadValuesError, EmptyTableError
from elasticnet_dist.folds import folds_from_splits, hash_column, key_folds, position_folds
from elasticnet_dist.io.blocks import BlockDecoder
from elasticnet_dist.io.table import open_table, split_pieces


@pytest.fixture(scope="module")
def regression():
    return correlated_problem(150, 60, seed=21, scales=(0.1, 10), n_informative=8)


@pytest.fixture(scope="module")
def classification():
    return correlated_problem(300, 30, seed=22, loss="logistic", scales=(0.1, 10),
                              n_informative=6)


# ---- against scikit-learn -------------------------------------------------------------

def sklearn_cv(n_alphas, **kw):
    """scikit-learn's ElasticNetCV with n_alphas grid points (``alphas=int`` since 1.7)."""
    version = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
    if version >= (1, 7):
        return SkElasticNetCV(alphas=n_alphas, **kw)
    return SkElasticNetCV(n_alphas=n_alphas, **kw)


@pytest.mark.parametrize("gram_max_features", [4096, 0])
def test_matches_sklearn_elasticnetcv_given_the_same_folds(regression, gram_max_features):
    X, y = regression
    kf = KFold(4)
    ours = ElasticNetCV(l1_ratio=[0.3, 1.0], cv=kf, standardize=False, tol=1e-10, eps=1e-2,
                        alphas=30, gram_max_features=gram_max_features).fit(X, y)
    ref = sklearn_cv(l1_ratio=[0.3, 1.0], cv=kf, eps=1e-2, tol=1e-12, max_iter=1_000_000,
                     n_alphas=30).fit(X, y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-7)
    # the same grid point: alphas computed by two libraries agree to rounding, not bits
    assert ours.l1_ratio_ == ref.l1_ratio_
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7 * np.abs(ref.coef_).max())
    assert ours.route_ == ("gram" if gram_max_features else "passes")
    if gram_max_features:
        assert ours.n_passes_ == 1  # every fold, l1_ratio and alpha from one pass
    else:
        assert ours.n_passes_ <= 2 * 30 + 1  # each pass serves 2 x (4 + 1) problems


def test_logistic_scores_match_sklearn_metrics_on_the_held_out_fold(classification):
    X, y = classification
    kf = KFold(3)
    cv = ElasticNetCV(l1_ratio=0.5, loss="logistic", cv=kf, alphas=12, tol=1e-10).fit(X, y)
    assert cv.scores_.shape == (12, 3)
    assert set(cv.cv_results_) >= {"deviance", "auc", "mean_deviance", "se_auc", "n_features"}
    for k, (train, test) in enumerate(kf.split(X)):
        for a in (3, 8):
            fold_fit = ElasticNet(alpha=cv.alphas_[a], l1_ratio=0.5, loss="logistic",
                                  tol=1e-10).fit(X[train], y[train])
            prob = fold_fit.predict_proba(X[test])[:, 1]
            np.testing.assert_allclose(cv.cv_results_["deviance"][a, k],
                                       2 * log_loss(y[test], prob), rtol=1e-5)
            auc = roc_auc_score(y[test], fold_fit.decision_function(X[test]))
            assert abs(cv.cv_results_["auc"][a, k] - auc) < 2e-3
    assert cv.n_passes_ < 4 * 12  # 3 folds + the full data, all in every pass


def test_logistic_grid_serves_every_fold_in_each_pass():
    t = make_wide_table(2000, 200, n_informative=10, seed=23, loss="logistic")
    cv = ElasticNetCV(l1_ratio=0.5, loss="logistic", cv=5, alphas=50).fit(t.X, t.y)
    assert cv.n_passes_ <= 100, cv.n_passes_  # the issue's budget for 5 folds x 50 alphas
    assert cv.converged_ and 0 < np.count_nonzero(cv.coef_) < 200


def test_the_fit_at_the_chosen_point_is_the_full_data_fit(regression):
    X, y = regression
    cv = ElasticNetCV(l1_ratio=[0.5, 0.9], cv=4, tol=1e-10).fit(X, y)
    single = ElasticNet(alpha=cv.alpha_, l1_ratio=cv.l1_ratio_, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(cv.coef_, single.coef_, atol=1e-7 * np.abs(single.coef_).max())
    li = [0.5, 0.9].index(cv.l1_ratio_)
    ai = int(np.flatnonzero(cv.alphas_[li] == cv.alpha_)[0])
    np.testing.assert_allclose(cv.coef_path_[li][:, ai], cv.coef_)
    assert cv.n_features_path_[li, ai] == np.count_nonzero(cv.coef_)
    assert cv.get_support().sum() == np.count_nonzero(cv.coef_)


# ---- selection rules ----------------------------------------------------------------------

def test_one_standard_error_rule_picks_the_sparsest_fit_within_one_se(regression):
    X, y = regression
    best = ElasticNetCV(l1_ratio=[0.5, 1.0], cv=5).fit(X, y)
    sparse = ElasticNetCV(l1_ratio=[0.5, 1.0], cv=5, selection="1se").fit(X, y)
    mean, se = best.cv_results_["mean_mse"], best.cv_results_["se_mse"]
    li, ai = np.unravel_index(np.nanargmin(mean), mean.shape)
    threshold = mean[li, ai] + se[li, ai]
    chosen = np.argwhere((sparse.alphas_ == sparse.alpha_)
                         & (np.array([[0.5], [1.0]]) == sparse.l1_ratio_))[0]
    assert mean[tuple(chosen)] <= threshold
    within = mean <= threshold
    assert sparse.n_features_path_[tuple(chosen)] == sparse.n_features_path_[within].min()
    assert np.count_nonzero(sparse.coef_) < np.count_nonzero(best.coef_)
    assert sparse.alpha_ > best.alpha_ or sparse.l1_ratio_ != best.l1_ratio_


def test_max_features_picks_the_best_fit_with_at_most_k_features(regression):
    X, y = regression
    free = ElasticNetCV(l1_ratio=1.0, cv=5).fit(X, y)
    k = max(1, np.count_nonzero(free.coef_) // 3)
    cv = ElasticNetCV(l1_ratio=1.0, cv=5, max_features=k).fit(X, y)
    assert 0 < np.count_nonzero(cv.coef_) <= k
    ok = (free.n_features_path_ <= k) & (free.n_features_path_ >= 0)
    best = np.argmin(np.where(ok, free.cv_results_["mean_mse"], np.inf))
    assert cv.alpha_ == pytest.approx(free.alphas_[best], rel=1e-12)
    # the paths stopped after the first alpha with more than k features
    computed = cv.n_features_path_ >= 0
    assert computed.sum() < computed.size and cv.n_features_path_[computed][-1] > k
    assert np.isnan(cv.mse_path_[~computed]).all()


# ---- folds ------------------------------------------------------------------------------------

def test_folds_from_keys_and_positions_are_stable():
    keys = pa.array(["user-%d" % i for i in range(5000)])
    a = key_folds(pa.table({"k": keys}), ["k"], 5)
    b = key_folds(pa.table({"k": keys.take(np.arange(4999, -1, -1))}), ["k"], 5)
    np.testing.assert_array_equal(a, b[::-1])  # a row's fold follows its key, not its place
    assert np.abs(np.bincount(a) - 1000).max() < 100
    np.testing.assert_array_equal(hash_column(pa.array([3, 4])), hash_column(pa.array([3.0, 4.0])))
    whole = position_folds("part-0.parquet", 0, 1000, 5)
    np.testing.assert_array_equal(np.concatenate([position_folds("part-0.parquet", 0, 300, 5),
                                                  position_folds("part-0.parquet", 300, 700, 5)]),
                                  whole)
    assert not np.array_equal(whole, position_folds("part-1.parquet", 0, 1000, 5))


def test_row_group_pieces_keep_the_folds_of_their_file(tmp_path, monkeypatch):
    t = make_wide_table(700, 5, seed=24)
    path = write_parquet(t, str(tmp_path / "t"), n_files=1, row_group_rows=100)
    decoder = BlockDecoder(tuple(t.names), "y", n_folds=5)

    def fold_sums(table):
        blocks = [decoder.load(piece) for piece in table.pieces]
        sums = [[b.y[lo:hi].sum() for lo, hi in zip(b.fold_bounds[:-1], b.fold_bounds[1:],
                                                     strict=True)] for b in blocks]
        return np.sum(sums, axis=0), len(blocks)

    whole, n_whole = fold_sums(open_table(path))
    monkeypatch.setattr("elasticnet_dist.io.table.PIECE_BYTES", 8 * 6 * 100)
    cut = open_table(path)
    split_pieces(cut, 6)
    parts, n_parts = fold_sums(cut)
    assert (n_whole, n_parts) == (1, 7)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


def test_folds_from_splits_need_a_partition():
    folds, k = folds_from_splits(KFold(3).split(np.zeros(9)), 9)
    assert k == 3 and folds.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="row 8 is in no test set"):
        folds_from_splits([(None, [0, 1, 2, 3]), (None, [4, 5, 6, 7])], 9)
    with pytest.raises(ValueError, match="overlap"):
        folds_from_splits([(None, [0, 1]), (None, [1, 2])], 3)


def test_a_fold_column_and_bad_fold_values(tmp_path):
    t = make_wide_table(200, 10, seed=25)
    folds = np.arange(200) % 4
    path = write_parquet(t, str(tmp_path / "f"), n_files=2, extra_columns={"fold": folds})
    cv = ElasticNetCV(cv=4).fit(path, label="y", fold_column="fold")
    assert cv.fold_rows_.tolist() == [50, 50, 50, 50]
    assert "fold" not in cv.feature_names_in_
    arrays = ElasticNetCV(cv=[(None, np.flatnonzero(folds == k)) for k in range(4)]).fit(t.X, t.y)
    np.testing.assert_allclose(arrays.mse_path_, cv.mse_path_, rtol=1e-10)
    with pytest.raises(BadValuesError, match="fold column 'fold' must hold integers 0 to 2"):
        ElasticNetCV(cv=3).fit(path, label="y", fold_column="fold")


@pytest.mark.parametrize("loss, match", [
    ("logistic", r"training rows of fold 0 \(the \d+ rows outside it\) hold class 0 only"),
    ("poisson", r"training rows of fold 0 \(the \d+ rows outside it\) are 0 in every row"),
])
def test_a_fold_whose_training_rows_the_loss_cannot_fit_is_named(tmp_path, loss, match):
    """Folds from a fold column that leave a training set with one class (logistic) or
    no count (Poisson): named before any path, not a search of NaN scores."""
    t = make_wide_table(200, 6, seed=27, loss=loss)
    positive = t.y > 0
    folds = np.where(positive, 0, 1 + np.arange(200) % 2)  # fold 0: every positive row
    path = write_parquet(t, str(tmp_path / "f"), n_files=1, extra_columns={"fold": folds})
    with pytest.raises(BadValuesError, match=match):
        ElasticNetCV(cv=3, loss=loss, alphas=5).fit(path, label="y", fold_column="fold")


def test_too_many_folds_for_the_rows_is_named():
    X, y = correlated_problem(6, 3, seed=26)
    with pytest.raises(EmptyTableError, match="fold .* of 40 holds no rows"):
        ElasticNetCV(cv=40).fit(X, y)


@pytest.mark.parametrize("param, value, match", [
    ("cv", 1, "cv must be at least 2"),
    ("selection", "best", "selection='best' is not supported"),
    ("scoring", "auc", "scoring='auc' is not available for loss='squared'"),
    ("l1_ratio", [0.5, 1.5], r"l1_ratio must be a number >= 0 and <= 1, got 1.5"),
    ("n_alphas", 0, "n_alphas must be an integer >= 1"),
    ("alphas", [1.0, -1.0], "alphas must be a non-empty list"),
    ("max_features", 0, "max_features must be an integer >= 1"),
    ("eps", 1.0, "eps must be a number > 0 and < 1"),
])
def test_bad_parameters_are_named(regression, param, value, match):
    X, y = regression
    with pytest.raises(ValueError, match=match):
        ElasticNetCV(**{param: value}).fit(X, y)


# ---- engines and partitioning ---------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed_tables(tmp_path_factory):
    t = make_wide_table(700, 30, n_informative=6, seed=27)
    keys = np.array(["row-%05d" % i for i in range(700)])
    root = tmp_path_factory.mktemp("cv")
    return {n: write_parquet(t, str(root / str(n)), n_files=n, extra_columns={"id": keys})
            for n in (1, 7)}


def _cv(source, engine=("local", None), **kw):
    name, handle = engine
    return ElasticNetCV(l1_ratio=[0.5, 1.0], cv=5, alphas=30, engine=name, cluster=handle,
                        **kw).fit(source, label="y", keys=["id"])


def _assert_same_search(a, b):
    assert a.fold_rows_.tolist() == b.fold_rows_.tolist()
    np.testing.assert_allclose(a.mse_path_, b.mse_path_, rtol=1e-9)
    assert a.l1_ratio_ == b.l1_ratio_ and a.alpha_ == pytest.approx(b.alpha_, rel=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9 * np.abs(b.coef_).max())
    assert ((a.coef_ != 0) == (b.coef_ != 0)).all()


def test_keyed_folds_do_not_depend_on_the_files(keyed_tables):
    one, seven = _cv(keyed_tables[1]), _cv(keyed_tables[7])
    _assert_same_search(seven, one)
    assert one.n_passes_ == 1 and "id" not in one.feature_names_in_


@pytest.mark.parametrize("name", ["dask", "spark"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_cluster_engines_give_the_same_folds_and_choice(name, loss, request, keyed_tables,
                                                        tmp_path):
    handle = request.getfixturevalue("dask_client" if name == "dask" else "spark")
    if loss == "squared":
        ref = _cv(keyed_tables[1])
        for n in (1, 7):
            _assert_same_search(_cv(keyed_tables[n], (name, handle)), ref)
        return
    t = make_wide_table(600, 20, n_informative=5, seed=28, loss=loss)
    path = write_parquet(t, str(tmp_path / loss), n_files=7)  # folds of position
    kw = dict(l1_ratio=0.7, loss=loss, cv=4, alphas=15)
    ref = ElasticNetCV(**kw).fit(path, label="y")
    est = ElasticNetCV(engine=name, cluster=handle, **kw).fit(path, label="y")
    assert est.fold_rows_.tolist() == ref.fold_rows_.tolist()
    np.testing.assert_allclose(est.scores_, ref.scores_, rtol=1e-9)
    assert est.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    assert est.n_passes_ == ref.n_passes_
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-9 * np.abs(ref.coef_).max())


@pytest.mark.parametrize("max_features", [None, 6])
def test_dask_solves_the_paths_on_its_workers_with_the_drivers_bits(dask_client, keyed_tables,
                                                                   caplog, monkeypatch,
                                                                   max_features):
    """The one-pass route's paths run as tasks on the Dask workers (with a stop,
    the full-data paths first, then the folds', from statistics sent once): the
    same bits as the local engine's driver threads."""
    ref = _cv(keyed_tables[7], max_features=max_features)
    scatters = []
    scatter = dask_client.scatter
    monkeypatch.setattr(dask_client, "scatter",
                        lambda data, **kw: scatters.append(len(data)) or scatter(data, **kw))
    with caplog.at_level(logging.INFO, logger="elasticnet_dist"):
        est = _cv(keyed_tables[7], ("dask", dask_client), max_features=max_features)
    monkeypatch.undo()
    assert "solved the 12 paths on the workers" in caplog.text  # 2 l1_ratios x (5 + 1)
    assert scatters == [6]  # the moments of the full data and of 5 training sets, once
    assert est.route_ == "gram"
    np.testing.assert_array_equal(est.mse_path_, ref.mse_path_)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    np.testing.assert_array_equal(est.n_features_path_, ref.n_features_path_)
    if max_features is not None:  # the stop ended the paths early, on both
        assert np.isnan(est.mse_path_).any()


def test_arrays_on_a_cluster_engine_keep_the_folds_of_local(dask_client, regression):
    X, y = regression
    ref = ElasticNetCV(cv=4, alphas=20).fit(X, y)
    est = ElasticNetCV(cv=4, alphas=20, engine="dask", cluster=dask_client).fit(X, y)
    np.testing.assert_allclose(est.mse_path_, ref.mse_path_, rtol=1e-9)
    assert est.fit_report_["engine"] == "dask" and est.fit_report_["route"] == "gram"


def test_glmnet_path_stops_end_saturated_paths_for_every_fold():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 30))
    y = X[:, :3] @ np.array([3.0, -2.0, 1.0]) + 0.01 * rng.standard_normal(400)  # R^2 ~ 1
    full = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=60, cv=4).fit(X, y)
    stopped = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=60, cv=4, devmax=0.999,
                           fdev=1e-5).fit(X, y)
    assert (full.n_features_path_ >= 0).all()
    for li in range(2):
        done = stopped.n_features_path_[li] >= 0
        last = int(np.flatnonzero(done)[-1])
        assert 5 <= last < 59 and done[:last + 1].all()
        # the fold paths ended where the full-data path did; the points before agree
        assert np.isnan(stopped.mse_path_[li, last + 1:]).all()
        assert np.isfinite(stopped.mse_path_[li, :last + 1]).all()
        np.testing.assert_allclose(stopped.mse_path_[li, :last + 1],
                                   full.mse_path_[li, :last + 1], rtol=1e-10)
        # the full-data fit at the stop explains more than devmax (or stopped improving)
        coef, b = stopped.coef_path_[li][:, last], stopped.intercept_path_[li][last]
        r2 = 1 - np.mean((y - X @ coef - b) ** 2) / np.var(y)
        assert r2 > 0.99
    assert stopped.alpha_ in stopped.alphas_[stopped.n_features_path_ >= 0]
    assert stopped.n_passes_ == 1


def _class_counts_per_fold(folder, n_folds, keys=None):
    """(folds x 2) rows of each class in each fold, as the local engine loaded them."""
    from elasticnet_dist.engines.local import LocalEngine
    from elasticnet_dist.loading import load_table

    engine = LocalEngine()
    loaded = load_table(str(folder), engine, label="y", loss="logistic", n_folds=n_folds,
                        keys=keys, stratify=True)
    counts = np.zeros((n_folds, 2), dtype=int)
    for block in engine._blocks:
        for k in range(n_folds):
            y = block.y[block.fold_bounds[k]:block.fold_bounds[k + 1]]
            counts[k] += [np.sum(y == 0), np.sum(y == 1)]
    return loaded, counts


@pytest.mark.parametrize("keys", [None, ["id"]])
def test_logistic_folds_are_stratified_to_one_row_per_class(tmp_path, keys):
    rng = np.random.default_rng(5)
    n = 73
    y = (rng.random(n) < 0.3).astype(float)  # 30% / 70%: unbalanced
    table = pa.table({"id": ["r%03d" % i for i in range(n)], "x": rng.standard_normal(n),
                      "y": y})
    for files in (1, 4):
        folder = tmp_path / ("%d-files" % files)
        folder.mkdir()
        for i, part in enumerate(np.array_split(np.arange(n), files)):
            pq_write(table.take(part), folder / ("part-%d.parquet" % i))
        loaded, counts = _class_counts_per_fold(folder, 5, keys)
        assert loaded.decoder.strata is not None
        for c in (0, 1):
            assert counts[:, c].max() - counts[:, c].min() <= 1, counts
            assert counts[:, c].sum() == np.sum(y == c)
        if keys:  # keyed folds do not depend on the files, stratified or not
            if files == 1:
                first = counts
            else:
                np.testing.assert_array_equal(counts, first)


def test_stratum_thresholds_cut_each_class_into_equal_runs():
    from elasticnet_dist.folds import stratified_folds, stratum_thresholds

    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, size=101, dtype=np.uint64) * np.uint64(2)
    labels = (rng.random(101) < 0.4).astype(float)
    strata = tuple(stratum_thresholds(h[labels == c], 4) for c in (0, 1))
    again = tuple(stratum_thresholds(rng.permutation(h[labels == c]), 4) for c in (0, 1))
    assert strata == again  # a multiset: any order of the rows
    folds = stratified_folds(h, labels, strata)
    for c in (0, 1):
        sizes = np.bincount(folds[labels == c], minlength=4)
        assert sizes.max() - sizes.min() <= 1


def pq_write(table, path):
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def test_the_convergence_warning_tells_exhausted_points_from_stalled_ones(classification):
    from types import SimpleNamespace

    from elasticnet_dist.model_selection import convergence_message

    X, y = classification
    with pytest.warns(UserWarning, match=r"used all max_iter=3 Newton iterations") as record:
        ElasticNetCV(l1_ratio=0.5, alphas=20, cv=3, loss="logistic", max_iter=3,
                     tol=1e-12).fit(X, y)
    assert not any("stalled" in str(w.message) for w in record)
    with pytest.raises(ValueError, match="no grid point has a finite CV score.*raise max_iter"):
        ElasticNetCV(l1_ratio=0.5, alphas=20, cv=3, loss="logistic", max_iter=2,
                     tol=1e-12).fit(X, y)
    # points that stopped before max_iter stalled at rounding: max_iter would not help
    path = SimpleNamespace(n_features=np.array([[3, 4, 5, -1]]),
                           converged=np.array([[True, False, False, False]]),
                           n_iter=np.array([[2, 3, 50, 0]]), gaps=np.array([[0, 2e-9, 1.0, 0]]),
                           tol_abs=1e-9)
    message = convergence_message(path, 1e-7, 50)
    assert message.startswith("2 of 3 full-data path point(s)")
    assert "1 used all max_iter=50" in message
    assert "1 stalled before" in message and "up to 2e-09 against 1e-09" in message
    path.converged[:] = True
    assert convergence_message(path, 1e-7, 50) == ""


@pytest.mark.parametrize("selection", ["min", "1se"])
def test_early_stopping_ends_paths_past_the_cv_minimum_with_the_same_choice(selection):
    """A wide logistic table (p > n): the full grid walks toward a saturated fit; with
    early_stop the paths of an l1_ratio end once the mean CV deviance has been more
    than a standard error above its best for that many alphas in a row, the points
    before are the full grid's, and the choice is the same."""
    t = make_wide_table(150, 400, n_informative=5, seed=12, loss="logistic")
    kw = dict(l1_ratio=[0.5, 1.0], alphas=60, cv=5, loss="logistic", selection=selection)
    full = ElasticNetCV(**kw).fit(t.X, t.y)
    early = ElasticNetCV(**kw, early_stop=5).fit(t.X, t.y)
    assert full.route_ == early.route_ == "passes"
    assert full.early_stopped_ == [None, None]
    assert any(stop is not None for stop in early.early_stopped_)
    assert all(stop is None or 5 <= stop < 59 for stop in early.early_stopped_)
    # the rule held (the last 5 alphas more than a standard error above the best)
    _check_cut_search(early, full, 5, "deviance")
    assert early.n_passes_ < full.n_passes_


def _check_cut_search(early, full, patience, metric):
    """``early`` is ``full`` cut where its rule held: same points and scores before the
    stop, nothing after it, the same choice and coefficients."""
    from elasticnet_dist.solvers.early_stop import CLEAR_MARGIN

    mean, se = full.cv_results_["mean_" + metric], full.cv_results_["se_" + metric]
    scores = "mse_path_" if metric == "mse" else "scores_"
    cut, whole = getattr(early, scores), getattr(full, scores)
    for li, stop in enumerate(early.early_stopped_):
        if stop is None:
            continue
        done = early.n_features_path_[li] >= 0
        assert done[:stop + 1].all() and not done[stop + 1:].any()
        assert np.isnan(cut[li, stop + 1:]).all()
        np.testing.assert_allclose(cut[li, :stop + 1], whole[li, :stop + 1], rtol=1e-10)
        best = int(np.argmin(mean[li, :stop + 1]))
        clear = mean[li, stop] > mean[li, best] + CLEAR_MARGIN * se[li, best]
        patient = (mean[li, stop - patience + 1:stop + 1] > mean[li, best] + se[li, best]).all()
        assert clear or (patient and best < stop - patience + 1)
    assert (early.alpha_, early.l1_ratio_) == (full.alpha_, full.l1_ratio_)
    np.testing.assert_allclose(early.coef_, full.coef_, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("max_features", [None, 12])
def test_early_stopping_on_the_one_pass_route_cuts_the_whole_grid(max_features):
    """The one-pass route advances its paths by segments of alphas so that the folds'
    held-out errors can end them (solvers/gram_segments.py): every path pauses
    where its segment ends, so its points are the whole grid's to the last bit
    (the full data's coefficient paths are compared bit for bit), and the search is
    the whole grid's cut at the stop. With max_features the full-data path ends
    inside a segment and its folds with it, as over the whole grid."""
    from elasticnet_dist.solvers.gram_segments import SEGMENT

    t = make_wide_table(600, 120, n_informative=6, seed=4, noise=3.0)
    kw = dict(l1_ratio=[0.5, 1.0], alphas=80, cv=4, selection="1se",
              max_features=max_features)
    full = ElasticNetCV(**kw).fit(t.X, t.y)
    early = ElasticNetCV(**kw, early_stop=4).fit(t.X, t.y)
    assert full.route_ == early.route_ == "gram"
    if max_features is None:
        assert all(stop is not None and stop < 79 for stop in early.early_stopped_)
        assert any(stop % SEGMENT != SEGMENT - 1 for stop in early.early_stopped_)
    else:  # the full-data path's own stop comes first, at an alpha inside a segment
        assert early.early_stopped_ == [None, None]
        ends = [int(np.sum(n >= 0)) for n in full.n_features_path_]
        assert ends == [int(np.sum(n >= 0)) for n in early.n_features_path_]
        assert any(end % SEGMENT for end in ends) and max(ends) < 80
    _check_cut_search(early, full, 4, "mse")
    for li in range(2):
        done = early.n_features_path_[li] >= 0
        assert np.array_equal(early.coef_path_[li][:, done], full.coef_path_[li][:, done])
        assert np.array_equal(early.intercept_path_[li][done], full.intercept_path_[li][done])


def test_early_stopping_waits_for_every_fold_and_skips_unscored_points():
    """The watch decides an alpha only once every fold has scored it, in order; a point
    some fold could not score (no certifying pass) neither counts nor resets."""
    from types import SimpleNamespace

    from elasticnet_dist.solvers.early_stop import EarlyStop
    from elasticnet_dist.solvers.options import PathLimit

    def point(deviance):
        if deviance is None:
            return SimpleNamespace(evaluation=None)
        return SimpleNamespace(evaluation={"valid_loss_sum": [deviance / 2],
                                           "valid_weight_sum": [1.0]})

    limit = PathLimit(19)
    watch = EarlyStop("logistic", "deviance", n_folds=2, patience=2, limit=limit, n_alphas=20)
    curve = [1.0, 0.8, 0.7, 0.73, None, 0.74, 1.0, 1.1]
    for i, value in enumerate(curve):
        watch.record(0, i, point(value))
    assert watch.checked == 0 and limit.last == 19  # fold 1 has scored nothing yet
    for i, value in enumerate(curve):
        watch.record(1, i, point(None if value is None else value + 0.02))
    # the best is alpha 2 (mean 0.71, se 0.01); 3 is 3 se worse, 4 is unscored, 5 is 4
    # se worse: two in a row
    assert watch.stopped_after == 5 and limit.last == 5


def test_one_alpha_clearly_past_the_curves_turn_ends_the_paths_at_once(caplog):
    """More than CLEAR_MARGIN standard errors above the best ends the paths without
    waiting for the patience; a best point without spread (se 0) never does so."""
    from elasticnet_dist.solvers.early_stop import CLEAR_MARGIN, EarlyStop
    from elasticnet_dist.solvers.options import PathLimit

    def run(curve, spread):
        limit = PathLimit(29)
        watch = EarlyStop("squared", "mse", n_folds=2, patience=10, limit=limit, n_alphas=30)
        for i, value in enumerate(curve):
            watch.record_score(0, i, value - spread)
            watch.record_score(1, i, value + spread)
        return watch.stopped_after

    # best at alpha 2: mean 0.5, se 0.01; then 3, 4.9 and 5.1 standard errors above it
    steep = [1.0, 0.7, 0.5, 0.53, 0.5 + 0.049, 0.5 + 0.051, 0.6, 0.7]
    assert CLEAR_MARGIN == 5.0
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        assert run(steep, 0.01) == 5
    assert "5.1 standard errors worse than its best (alpha 3)" in caplog.text
    assert run(steep, 0.0) is None  # se 0: only the patience rule, not reached here
    assert run(steep[:5] + [0.52] * 12, 0.01) == 12  # a slow rise: alphas 3 to 12 in a row


class InProcessHost:
    """``host_objects`` in this process: the objects are built here, and every call
    after the first ``fail_after`` raises, as when a worker holding them is lost."""

    def __init__(self, fail_after=None):
        self.fail_after, self.calls, self.objects = fail_after, 0, []

    def __call__(self, factory, shared, jobs):
        self.objects = [factory(shared[i], *args) for i, args in jobs]
        return self

    def call(self, j, method, *args):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ConnectionError("the worker holding path %d is gone" % j)
        return getattr(self.objects[j], method)(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.objects = []


@pytest.mark.parametrize("fail_after, max_features", [(None, None), (25, None), (None, 12)])
def test_hosted_one_pass_paths_are_the_drivers_and_fall_back_to_it(fail_after, max_features,
                                                                   monkeypatch, caplog):
    """Paths hosted elsewhere (here: in this process, through the hosting protocol)
    are the driver's to the bit, also where the full data's path ends them (its
    max_features stop, told to the driver by the hosted path); a host lost
    halfway (the 26th call fails) ends in the driver's search from the start,
    with a warning, and the same result."""
    from elasticnet_dist.sources import EngineSource

    t = make_wide_table(600, 120, n_informative=6, seed=4, noise=3.0)
    kw = dict(l1_ratio=[0.5, 1.0], alphas=80, cv=4, selection="1se", early_stop=4,
              max_features=max_features)
    from elasticnet_dist import progress

    class Points:  # the status line's count: expect_points starts it again
        points = total = 0

        def expect_points(self, total):
            self.points, self.total = 0, total

        def path_point(self):
            self.points += 1

        def data_pass(self, *args):
            pass

        def close(self):
            pass

    with progress.observing(Points()) as seen:
        driver = ElasticNetCV(**kw).fit(t.X, t.y)
    solved = seen.points
    host = InProcessHost(fail_after)
    monkeypatch.setattr(EngineSource, "host_objects", host)  # the local engine's source
    with caplog.at_level(logging.INFO, logger="elasticnet_dist"), \
            progress.observing(Points()) as seen:
        hosted = ElasticNetCV(**kw).fit(t.X, t.y)
    assert host.calls > (25 if fail_after else 20)  # every path, a segment or more each
    if fail_after:
        assert ("solving the paths on the workers failed (ConnectionError: the worker holding "
                "path") in caplog.text
        assert seen.points == solved < seen.total  # counted again from 0 for the driver's
    else:
        assert "solved the 10 paths on the workers, 10 alphas at a time" in caplog.text
    assert hosted.early_stopped_ == driver.early_stopped_
    if max_features is None:
        assert any(stop is not None for stop in hosted.early_stopped_)
    else:  # the full data's paths ended first, inside a segment
        ends = [int(np.sum(n >= 0)) for n in hosted.n_features_path_]
        assert ends == [int(np.sum(n >= 0)) for n in driver.n_features_path_]
        assert max(ends) < 80
    np.testing.assert_array_equal(hosted.mse_path_, driver.mse_path_)
    for li in range(2):
        np.testing.assert_array_equal(hosted.coef_path_[li], driver.coef_path_[li])


@pytest.mark.cluster
def test_early_stopped_one_pass_paths_live_on_the_dask_workers(dask_client, tmp_path,
                                                                monkeypatch, caplog):
    """On Dask every early-stopped one-pass path lives on a worker (an actor, advanced a
    segment at a time while the driver scores): its points are the ones the driver's
    threads solve when hosting fails (forced here), bit for bit, and the search is the
    whole grid's cut at the stop."""
    from elasticnet_dist.engines.dask_engine import DaskEngine

    t = make_wide_table(600, 120, n_informative=6, seed=4, noise=3.0)
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    kw = dict(l1_ratio=[0.5, 1.0], alphas=80, cv=4, selection="1se", engine="dask",
              cluster=dask_client)
    with caplog.at_level(logging.INFO, logger="elasticnet_dist"):
        hosted = ElasticNetCV(**kw, early_stop=4).fit(path, label="y")
    assert "solved the 10 paths on the workers, 10 alphas at a time" in caplog.text
    full = ElasticNetCV(**kw).fit(path, label="y")
    caplog.clear()

    def refuse(self, *args):
        raise RuntimeError("no actors today")

    monkeypatch.setattr(DaskEngine, "host_objects", refuse)
    with caplog.at_level(logging.INFO, logger="elasticnet_dist"):
        driver = ElasticNetCV(**kw, early_stop=4).fit(path, label="y")
    assert "on the workers failed (RuntimeError: no actors today)" in caplog.text
    assert hosted.route_ == driver.route_ == "gram"
    assert hosted.early_stopped_ == driver.early_stopped_
    assert any(stop is not None for stop in hosted.early_stopped_)
    np.testing.assert_array_equal(hosted.mse_path_, driver.mse_path_)
    for li in range(2):
        np.testing.assert_array_equal(hosted.coef_path_[li], driver.coef_path_[li])
    _check_cut_search(hosted, full, 4, "mse")


@pytest.mark.parametrize("engine", ["dask", "spark"])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_early_stopping_stops_at_the_same_alpha_on_every_engine(engine, loss, request,
                                                                 tmp_path):
    """The watch reads only the folds' held-out scores, which every engine computes with
    the same blocks and merge tree: the paths end at the same alphas, with the same
    choice and coefficients as on the local engine (a table of files; the pass route
    and the one-pass route)."""
    cluster = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    squared = loss == "squared"
    t = make_wide_table(600 if squared else 150, 120 if squared else 400, n_informative=5,
                        seed=12, loss=loss, noise=3.0 if squared else 1.0)
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    kw = dict(l1_ratio=[0.5, 1.0], alphas=60, cv=5, loss=loss, selection="1se",
              early_stop=5)
    local = ElasticNetCV(**kw).fit(path, label="y")
    there = ElasticNetCV(**kw, engine=engine, cluster=cluster).fit(path, label="y")
    assert local.route_ == there.route_ == ("gram" if squared else "passes")
    assert local.early_stopped_ == there.early_stopped_
    assert any(stop is not None for stop in local.early_stopped_)
    assert (there.alpha_, there.l1_ratio_) == (local.alpha_, local.l1_ratio_)
    scores = "mse_path_" if squared else "scores_"
    np.testing.assert_allclose(getattr(there, scores), getattr(local, scores), rtol=1e-9)
    np.testing.assert_allclose(there.coef_, local.coef_, rtol=1e-9, atol=1e-12)
