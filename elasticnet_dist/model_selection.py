"""Choosing alpha and l1_ratio: :class:`ElasticNetCV` and :func:`enet_path`."""
from __future__ import annotations

import functools
import logging
import numbers
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import _validation as v
from .solvers.options import PathStops, ProblemSpec, SolverOptions
from .solvers.table_path import table_path
from .sources import InMemorySource
from .errors import EmptyTableError
from .estimators import ElasticNet, _fits_a_table
from .loading import load_table
from .sources import EngineSource
from .folds import folds_from_splits
from .losses import get_loss, same_loss
from .params import ESTIMATOR_DEFAULTS as D
from .params import DEFAULT_MAX_LEVELS, PATH_MAX_ITER
from .manifest import Manifest, read_manifest
from .solvers.cv import WarmStart, choose, cross_validate, window_edge
from .solvers.multinomial import multinomial_path
from .solvers.stability import group_seed, selection_frequencies
from .solvers.routes import GRAM_MAX_FEATURES

log = logging.getLogger("elasticnet_dist")


class ElasticNetCV(ElasticNet):
    r"""Elastic net with (alpha, l1_ratio) chosen by K-fold cross-validation.

    Same objective, losses and inputs as :class:`ElasticNet`. For every
    ``l1_ratio`` the paths of the full data and of the K training sets run
    over ``alphas`` (default: ``n_alphas`` values from ``alpha_max`` of the
    full data down to ``eps * alpha_max``, geometric; for ``l1_ratio = 0`` the
    grid of ``l1_ratio = 0.001``, as glmnet). The held-out scores choose the
    point (``selection``); the fit at that point is the full-data path's, so
    there is no separate refit.

    Data passes (``n_passes_``): for the squared loss with at most
    ``gram_max_features`` features, **one** (the moments and Gram matrices of
    every fold at once); otherwise one per path step, each serving all folds
    and all l1_ratios at once (see :mod:`elasticnet_dist.solvers.cv`).

    Folds: a hash of the ``keys`` columns of a table, else of each row's file
    and position (:mod:`elasticnet_dist.folds`), so that they are the same on
    every engine and however the files are cut; a column of fold numbers
    (``fit(..., fold_column=)``); or, for arrays, ``cv`` as a scikit-learn
    splitter (``KFold(5)``) or a list of ``(train, test)`` splits whose test
    sets partition the rows.

    Parameters
    ----------
    l1_ratio : float or list of floats in [0, 1], default 0.5.
    alphas : int or list of floats > 0, default None (100). A number: that many alphas from
        ``alpha_max`` down to ``eps * alpha_max``; a list: the same grid for every
        l1_ratio (scikit-learn 1.7 and later spell it so).
    n_alphas : int, deprecated. The number of alphas, as ``alphas=int`` (a
        FutureWarning, as scikit-learn's).
    eps : float, optional (1e-3 if n > p else 1e-2).
    cv : int >= 2, splitter or list of splits, default 5.
    selection : {"min", "1se"}, default "min". ``"min"``: the best mean score;
        ``"1se"``: the sparsest fit within one standard error of the best.
    max_features : int, optional. Only fits with at most this many features
        are candidates, and each path stops after the first alpha whose
        full-data fit has more (glmnet's ``dfmax``); later scores are NaN.
    scoring : {"mse"} (squared) or {"deviance", "auc"} (logistic), optional.
        Default: "mse" / "deviance" (2 x mean log-loss). The AUC comes from
        histograms of the held-out linear predictor (2,048 bins, finest near
        0; rows in one bin count as ties).
    loss, fit_intercept, standardize, penalty_factor, tol, engine, cluster,
    dtype, nan_policy, checkpoint_dir, stats_store, verbose : as in :class:`ElasticNet`.
    max_iter : int, default 100. Newton iterations per path point.
    screening : bool, default True. Sequential strong rules (never change
        the answer: every point is certified by its duality gap).
    gram_max_features : int, default 4096. Largest p for the one-pass route.
    fold_seed : int, default 0. Changes every hashed fold assignment (and the
        stability groups and half-samples).
    stability : int, default 0 (off). After the search, the selection
        frequency of every feature at the chosen penalty over this many
        half-samples (even: complementary pairs, Shah and Samworth), see
        :mod:`elasticnet_dist.solvers.stability`. Costs one more read of the
        table and, on the one-pass route, one pass; else one path's passes,
        each serving every half-sample.
    stability_groups : int, default 16. Row groups (hashed as the folds, with
        another seed) whose unions of half of them are the half-samples.
    min_stability : float in [0, 1], optional. ``get_support()`` (and the stage's
        manifest) keeps only the selected features chosen in at least this
        share of the half-samples; the coefficients stay those of the full fit.
    warm_start_from : a manifest (path, URL, dict or
        :class:`~elasticnet_dist.manifest.Manifest`) of a previous run with the same
        loss, optional. The search solves, per l1_ratio, only the points of the grid
        from 15 above that run's penalty to 15 below its best score's (31 when they
        coincide), every path starting from its coefficients
        (features it did not have start at 0) instead of walking down from
        ``alpha_max``: a fraction of the passes on the pass route, of the driver's
        work on the one-pass route (:class:`~elasticnet_dist.solvers.cv.WarmStart`).
        When the best or chosen point falls on an edge of that window inside the
        grid, the whole grid is searched after all. ``warm_start_info_`` says what
        happened.
    devmax, fdev : float, optional. glmnet's path stops (``glmnet.control``;
        glmnet uses 0.999 and 1e-5): each l1_ratio's paths end, from the fifth
        alpha on, once the full-data fit explains more than ``devmax`` of the
        null deviance, or its deviance ratio grew by less than ``fdev`` of
        itself since the previous alpha; later scores are NaN. Off by default
        (scikit-learn's full grid); the command line turns them on.
    early_stop : int, optional. Each l1_ratio's paths end once the mean CV
        ``scoring`` metric has been worse than its best by more than its
        standard error for this many alphas in a row (the choice is then the
        whole grid's unless the curve comes back; see
        :mod:`elasticnet_dist.solvers.early_stop`); later scores are NaN and
        ``early_stopped_`` gives each l1_ratio's last alpha index (None: not
        stopped). Off by default; the command line uses 10.

    Attributes
    ----------
    alpha_, l1_ratio_ : the chosen penalty. coef_, intercept_,
        coef_standardized_ : the full-data fit there.
    alphas_ : (n_l1_ratio, n_alphas), or (n_alphas,) for one l1_ratio.
    mse_path_ (squared loss) / scores_ (logistic, Poisson; the ``scoring``
        metric): held-out scores, (n_l1_ratio, n_alphas, n_folds) or
        (n_alphas, n_folds), as scikit-learn's ``mse_path_``.
    cv_results_ : dict: every metric's scores, their mean and standard error
        over folds (``mean_<metric>``, ``se_<metric>``), ``n_features``.
    n_features_path_ : features selected by the full-data fit at each point.
    coef_path_ : (n_l1_ratio, n_features, n_alphas) or (n_features, n_alphas);
        ``intercept_path_`` likewise without the feature axis;
        ``coef_standardized_path_`` the same coefficients times ``sd_j``.
    n_passes_ : data passes of the whole search. route_ : "gram" or "passes".
    stability_ : (n_features,) selection frequencies (with ``stability``);
        ``stability_info_`` a dict: ``n_subsamples``, ``groups``, ``group_rows``,
        ``alpha``, ``l1_ratio``, ``route``, ``data_passes``, ``converged``,
        ``seconds``, ``min_stability``.
    fold_rows_ : rows per fold. dual_gap_, converged_ : of the chosen fit;
        ``tol_`` the absolute gap tolerance of the full-data fits.
    feature_names_in_, dropped_features_, dropped_details_, categorical_columns_,
    constant_features_, fit_report_ :
        as in :class:`ElasticNet`.
    """

    def __init__(self, l1_ratio=D["l1_ratio"], *, alphas=None, n_alphas="deprecated",
                 eps=D["eps"], cv=D["cv"], selection=D["selection"],
                 max_features=D["max_features"], scoring=D["scoring"], loss=D["loss"],
                 fit_intercept=D["fit_intercept"], standardize=D["standardize"],
                 penalty_factor=None, tol=D["tol"], max_iter=PATH_MAX_ITER,
                 screening=D["screening"], gram_max_features=D["gram_max_features"],
                 fold_seed=D["fold_seed"], devmax=D["devmax"], fdev=D["fdev"],
                 early_stop=D["early_stop"],
                 stability=D["stability"], stability_groups=D["stability_groups"],
                 min_stability=D["min_stability"], engine="local",
                 cluster=None, dtype=D["dtype"], nan_policy=D["nan_policy"],
                 checkpoint_dir=None, stats_store=None, warm_start_from=None,
                 verbose=False):
        self.l1_ratio = l1_ratio
        self.warm_start_from = warm_start_from
        self.stability = stability
        self.stability_groups = stability_groups
        self.min_stability = min_stability
        self.n_alphas = n_alphas
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.selection = selection
        self.max_features = max_features
        self.scoring = scoring
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.screening = screening
        self.gram_max_features = gram_max_features
        self.fold_seed = fold_seed
        self.devmax = devmax
        self.fdev = fdev
        self.early_stop = early_stop
        self.engine = engine
        self.cluster = cluster
        self.dtype = dtype
        self.nan_policy = nan_policy
        self.checkpoint_dir = checkpoint_dir
        self.stats_store = stats_store
        self.verbose = verbose

    def fit(self, X, y=None, sample_weight=None, *, offset=None, label=None, weight=None,
            features=None, exclude=None, keys=None, fold_column=None, storage_options=None,
            vector=None, max_levels=DEFAULT_MAX_LEVELS):
        """Cross-validate on arrays ``(X, y)`` or a table (see :meth:`ElasticNet.fit`;
        ``offset``: the rows' log exposures for ``loss="poisson"``).

        ``keys`` (tables): the columns whose hash assigns the folds;
        ``fold_column``: a column of fold numbers 0 .. K-1 instead (K = ``cv``);
        ``vector``: a column of Spark ML vectors holding the features (see
        :meth:`ElasticNet.fit`; sparse ``X`` stays sparse too); ``max_levels``: string
        columns with at most that many levels are categorical features (see
        :meth:`ElasticNet.fit`).
        """
        if _fits_a_table(X, y, sample_weight, label):
            if not _is_count(self.cv):
                raise ValueError("cv must be a number of folds for a table; give fold_column= "
                                 "for folds of your own")
            self._n_folds = int(self.cv)
            return self._fit_table(X, label=label, weight=weight, features=features,
                                   exclude=exclude, keys=keys, storage_options=storage_options,
                                   fold_column=fold_column, offset=offset, vector=vector,
                                   max_levels=max_levels)
        X, y, s, _, names = self._check_input(X, y, sample_weight)
        o = v.check_offset(offset, X.shape[0], self.loss)
        folds = None
        if _is_count(self.cv):
            self._n_folds = int(self.cv)
        else:
            splits = self.cv.split(X, y) if hasattr(self.cv, "split") else self.cv
            folds, self._n_folds = folds_from_splits(splits, X.shape[0])
        table, columns = v.arrays_as_table(X, y, s, names, folds, offset=o)
        return self._fit_table(table, label=v.LABEL, weight=None if s is None else v.WEIGHT,
                               **columns, exclude=None, keys=None, names_from_table=False,
                               fold_column=None if folds is None else v.FOLD,
                               offset=None if o is None else v.OFFSET)

    def _validate_params(self, feature_names):
        return v.check_cv_params(self, feature_names)

    def _grid(self):
        """``alphas`` and ``n_alphas`` as the solver takes them: a list, or a count."""
        if not (isinstance(self.n_alphas, str) and self.n_alphas == "deprecated"):
            return {"alphas": None, "n_alphas": int(self.n_alphas)}
        if self.alphas is None or isinstance(self.alphas, numbers.Integral):
            return {"alphas": None, "n_alphas": 100 if self.alphas is None else int(self.alphas)}
        return {"alphas": self.alphas, "n_alphas": len(self.alphas)}

    def _fold_options(self, fold_column):
        return {"n_folds": self._n_folds, "fold_column": fold_column,
                "fold_seed": int(self.fold_seed),
                "stratify": get_loss(self.loss).classes is not None and fold_column is None}

    def _run(self, source, factors, t_load=0.0):
        self._set_classes()
        t0 = time.perf_counter()
        warm = self._warm_start()
        search = functools.partial(
            cross_validate, source, n_folds=self._n_folds, loss=self.loss,
            l1_ratios=self.l1_ratio, **self._grid(), eps=self.eps,
            penalty_factor=factors, fit_intercept=self.fit_intercept,
            standardize=self.standardize, tol=float(self.tol), max_iter=int(self.max_iter),
            screening=self.screening, max_features=self.max_features,
            gram_max_features=int(self.gram_max_features), devmax=self.devmax,
            fdev=self.fdev, early_stop=self.early_stop, scoring=self.scoring,
            classes=self._classes())
        path = search(warm=warm)
        metric = self.scoring or get_loss(self.loss).metrics[0]
        choice = choose(path, metric, self.selection, self.max_features)
        self.__dict__.pop("warm_start_info_", None)
        if warm is not None:
            self.warm_start_info_ = info = {
                "alpha": warm.alpha, "l1_ratio": warm.l1_ratio, "window": None,
                "fell_back": False, "window_passes": path.n_passes}
            if path.window is not None:
                info["window"] = [float(path.alphas[:, 0].max()),
                                  float(path.alphas[:, -1].min())]
            if window_edge(path, choice):
                log.warning("warm start: the best or chosen alpha is at an edge of the window "
                            "around the previous penalty; searching the whole grid")
                window_passes = path.n_passes
                path = search()
                path.n_passes += window_passes
                choice = choose(path, metric, self.selection, self.max_features)
                info["fell_back"] = True
        self._store_cv(path, choice, metric)
        self.timings_ = {"load": t_load, **path.timings, "total": time.perf_counter() - t0}
        self.fit_report_ = {"engine": "local", "workers": 1, "partitions": 1,
                            "rows": int(source.n_rows), "n_passes": path.n_passes,
                            "timings": dict(self.timings_), "engine_start_s": 0.0,
                            "route": path.route}
        return self

    def _warm_start(self):
        """The :class:`~elasticnet_dist.solvers.cv.WarmStart` of ``warm_start_from`` for
        this fit's features, or None."""
        if self.warm_start_from is None:
            return None
        manifest = self.warm_start_from
        if isinstance(manifest, dict):
            manifest = Manifest(manifest)
        elif not isinstance(manifest, Manifest):
            manifest = read_manifest(manifest)
        document = manifest.document
        if not same_loss(document["target"]["loss"], self.loss):
            raise ValueError("warm_start_from: %s was fitted with loss=%r, this search has "
                             "loss=%r; start from a manifest of the same loss"
                             % (manifest.path or "the manifest", document["target"]["loss"],
                                self.loss))
        if get_loss(self.loss).multiclass:
            coef, intercept = self._class_start(manifest)
        else:
            coefficients = manifest.coefficients
            coef = np.array([coefficients.get(name, 0.0) for name in self._table_features],
                            dtype=np.float64)
            intercept = float(manifest.intercept)
        best = document.get("selection", {}).get("scores", {}).get("best")
        return WarmStart(coef, intercept, float(document["penalty"]["alpha"]),
                         float(document["penalty"]["l1_ratio"]),
                         None if best is None else (float(best["alpha"]),
                                                    float(best["l1_ratio"])))

    def _class_start(self, manifest):
        """A multinomial manifest's coefficients (C x p, this fit's features) and
        intercepts, or a ValueError when its classes are not this fit's."""
        previous = manifest.document["target"].get("classes")
        if previous != np.asarray(self.classes_).tolist():
            raise ValueError("warm_start_from: %s has the classes %s, this search's label "
                             "has %s; start from a manifest of the same classes"
                             % (manifest.path or "the manifest", previous,
                                np.asarray(self.classes_).tolist()))
        by_name = manifest.class_coefficients
        zero = [0.0] * len(previous)
        coef = np.array([by_name.get(name, zero) for name in self._table_features],
                        dtype=np.float64).T
        return coef, np.asarray(manifest.intercept, dtype=np.float64)

    def _fit_stability(self, table, engine, load_options, fold_column, plan, factors):
        """With ``stability`` = N: the table loaded again with ``stability_groups`` row
        groups as its folds, and the chosen penalty's selection frequencies over N
        complementary half-samples (:mod:`elasticnet_dist.solvers.stability`)."""
        for name in ("stability_", "stability_info_"):
            self.__dict__.pop(name, None)
        if not self.stability:
            return
        t0 = time.perf_counter()
        groups = int(self.stability_groups)
        exclude = list(load_options["exclude"] or ()) + ([fold_column] if fold_column else [])
        try:
            regrouped = load_table(table, engine, **{**load_options, "exclude": exclude or None},
                                   n_folds=groups, fold_seed=group_seed(self.fold_seed))
        except EmptyTableError as exc:
            raise EmptyTableError("stability selection's %d row groups: %s"
                                  % (groups, str(exc).replace("folds", "groups (stability_groups)")
                                     .replace("fold ", "group "))) from None
        if regrouped.plan.features != plan.features:  # the same table, read again
            raise RuntimeError("the table changed while it was read: %d features, then %d"
                               % (len(plan.features), len(regrouped.plan.features)))
        result = selection_frequencies(
            EngineSource(engine), n_groups=groups, n_subsamples=int(self.stability),
            alphas=self._chosen_path, l1_ratio=self.l1_ratio_, loss=self.loss,
            penalty_factor=factors, fit_intercept=self.fit_intercept,
            standardize=self.standardize, tol=float(self.tol), max_iter=int(self.max_iter),
            screening=self.screening, gram_max_features=int(self.gram_max_features),
            seed=int(self.fold_seed), classes=self._classes())
        seconds = time.perf_counter() - t0
        self.stability_ = result.frequencies
        self.stability_info_ = {
            "n_subsamples": result.n_subsamples, "groups": result.n_groups,
            "group_rows": result.group_rows.tolist(), "alpha": result.alpha,
            "l1_ratio": result.l1_ratio, "route": result.route,
            "data_passes": result.n_passes, "converged": result.converged,
            "seconds": seconds, "min_stability": self.min_stability}
        self.timings_["stability"] = seconds
        self.fit_report_["timings"]["stability"] = seconds
        if result.converged < result.n_subsamples:
            warnings.warn(ConvergenceWarning(
                "stability: %d of the %d half-sample fits missed the duality-gap tolerance "
                "at the chosen alpha within max_iter=%d; their selections still count"
                % (result.n_subsamples - result.converged, result.n_subsamples,
                   self.max_iter)), stacklevel=4)

    def _get_support_mask(self):
        """The selected features; with ``min_stability``, only those selected in at
        least that share of the half-samples."""
        mask = super()._get_support_mask()
        frequencies = getattr(self, "stability_", None)
        if self.min_stability is not None and frequencies is not None:
            mask = mask & (frequencies >= self.min_stability)
        return mask

    def _store_cv(self, path, choice, metric):
        li, ai = choice.l1_index, choice.alpha_index
        one = np.ndim(self.l1_ratio) == 0

        def shaped(a):
            return a[0] if one else a

        self.l1_ratio_ = float(path.l1_ratios[li])
        self.alpha_ = float(path.alphas[li, ai])
        self.coef_ = path.coefs[li, ai].copy()
        self.coef_standardized_ = path.coefs_standardized[li, ai].copy()
        self.intercept_ = path.intercepts[li, ai].copy() if path.intercepts.ndim == 3 \
            else float(path.intercepts[li, ai])
        self.constant_features_ = path.constant
        self.dual_gap_ = float(path.gaps[li, ai])
        self.tol_ = float(path.tol_abs)
        self.converged_ = bool(path.converged[li, ai])
        self.alphas_ = shaped(path.alphas)
        self.n_features_path_ = shaped(path.n_features)
        # alphas last: (L,) p x A, or (L,) C x p x A (multinomial)
        self.coef_path_ = shaped(np.moveaxis(path.coefs, 1, -1))
        self.coef_standardized_path_ = shaped(np.moveaxis(path.coefs_standardized, 1, -1))
        self.intercept_path_ = shaped(path.intercepts)
        scores = path.scores[metric]
        if metric == "mse":
            self.mse_path_ = shaped(scores)
        else:
            self.scores_ = shaped(scores)
        results = {"n_features": self.n_features_path_}
        for name, values in path.scores.items():
            with warnings.catch_warnings(), np.errstate(invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                k = values.shape[2]
                results[name] = shaped(values)
                results["mean_" + name] = shaped(np.nanmean(values, axis=2))
                results["se_" + name] = shaped(np.nanstd(values, axis=2, ddof=1) / np.sqrt(k))
        self.cv_results_ = results
        self.early_stopped_ = list(path.stopped_early)
        self.selection_ = {"metric": metric, "rule": choice.rule, "threshold": choice.threshold,
                           "max_features": self.max_features, "best": choice.best,
                           "at_grid_edge": choice.at_grid_edge}
        if choice.at_grid_edge is not None:
            bl, ba = choice.best
            warnings.warn(
                "the best mean CV %s is at the %s of the grid (alpha=%.6g, l1_ratio=%g): a "
                "better fit may lie beyond it; %s" % (
                    metric, choice.at_grid_edge.replace("_", " "), path.alphas[bl, ba],
                    np.atleast_1d(self.l1_ratio)[bl],
                    "extend the grid to smaller alphas (a smaller eps, or alphas=[...])"
                    if choice.at_grid_edge == "smallest_alpha" else
                    "no penalty that selects a feature beats the intercept alone"),
                UserWarning, stacklevel=4)
        self.n_passes_ = path.n_passes
        self.route_ = path.route
        self._chosen_path = path.alphas[li, :ai + 1]  # the path to the chosen alpha
        self.fold_rows_ = path.fold_rows
        self.n_iter_ = None
        message = convergence_message(path, self.tol, self.max_iter)
        if message:
            warnings.warn(ConvergenceWarning(message), stacklevel=4)


def convergence_message(path, tol, max_iter):
    """What went wrong at the full-data points that missed the gap tolerance, or ''.

    A point either used all ``max_iter`` Newton iterations (more may reach the
    tolerance) or stopped before: its steps no longer lowered the objective, so
    the gap is at the rounding floor of the problem and only a looser ``tol``
    certifies it.
    """
    solved = path.n_features >= 0
    failed = solved & ~path.converged
    if not failed.any():
        return ""
    n_iter = path.n_iter if path.n_iter is not None else np.full(failed.shape, max_iter)
    exhausted = int(np.sum(failed & (n_iter >= max_iter)))
    stalled = int(failed.sum()) - exhausted
    parts = []
    if exhausted:
        parts.append("%d used all max_iter=%d Newton iterations (raise max_iter)"
                     % (exhausted, max_iter))
    if stalled:
        parts.append("%d stalled before: their steps no longer lowered the objective, so the "
                     "gap (up to %.2g against %.2g) is at this problem's rounding floor (raise "
                     "tol to certify them)"
                     % (stalled, np.max(path.gaps[failed & (n_iter < max_iter)]), path.tol_abs))
    return ("%d of %d full-data path point(s) did not reach the duality-gap tolerance "
            "(tol=%.1e): %s" % (int(failed.sum()), int(solved.sum()), tol, "; ".join(parts)))


def _is_count(cv):
    return isinstance(cv, numbers.Integral) and not isinstance(cv, bool)


@dataclass
class EnetPath:
    """A regularization path on the original scale (scikit-learn's layout:
    ``coefs`` is (n_features, n_alphas); the multinomial loss's (n_classes,
    n_features, n_alphas), its ``intercepts`` (n_alphas, n_classes) and its
    ``classes`` the label's); ``route``: ``"gram"`` or ``"passes"``
    (:mod:`elasticnet_dist.solvers.routes`)."""

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    dual_gaps: np.ndarray
    n_features: np.ndarray
    converged: np.ndarray
    n_passes: int
    route: str = "passes"
    classes: Optional[np.ndarray] = None


def enet_path(X, y, *, l1_ratio=0.5, loss="squared", eps=None, n_alphas=100, alphas=None,
              sample_weight=None, fit_intercept=True, standardize=True, penalty_factor=None,
              tol=1e-6, max_iter=100, screening=True, max_features=None,
              gram_max_features=GRAM_MAX_FEATURES, offset=None):
    """The elastic-net path of in-memory ``(X, y)`` over decreasing alphas.

    Default alphas: ``n_alphas`` from ``alpha_max`` down to ``eps * alpha_max``
    (``eps`` 1e-3 when n > p else 1e-2), geometric. Warm starts, sequential
    strong rules (``screening``) checked against the KKT conditions of every
    feature, and one pass per point at most (squared loss with p <=
    ``gram_max_features`` where the route's cost model prefers it: one pass in
    all). ``max_features`` stops after the first point with more selected
    features (glmnet's ``dfmax``), so the path may be shorter than ``alphas``.
    ``offset`` (``loss="poisson"``): the rows' log exposures. Returns an
    :class:`EnetPath`.
    """
    v.check_path_params(l1_ratio, loss, eps, n_alphas, tol, max_iter, screening, max_features,
                        gram_max_features, fit_intercept, standardize)
    v.check_alphas(alphas)
    if isinstance(alphas, numbers.Integral):  # a number of alphas, as ElasticNetCV takes it
        n_alphas, alphas = int(alphas), None
    y_labels = y
    X, y, s, factors, names = v.check_data(
        X, y, sample_weight, loss=loss,
        penalty_factors=lambda names: v.penalty_factors_by_name(penalty_factor, names))
    o = v.check_offset(offset, X.shape[0], loss)
    if get_loss(loss).multiclass:
        labels = np.asarray(y_labels).ravel()
        classes = get_loss(loss).classes_of(labels if s is None else labels[s > 0])
        with v.naming_nonfinite_columns(X, names):
            path = multinomial_path(InMemorySource(X, y, s), len(classes), l1_ratio=l1_ratio,
                                    alphas=alphas, n_alphas=n_alphas, eps=eps,
                                    penalty_factor=factors, fit_intercept=fit_intercept,
                                    standardize=standardize,
                                    options=SolverOptions(tol, max_iter, screening),
                                    stops=PathStops(max_features=max_features))
        return EnetPath(alphas=path.alphas, coefs=np.moveaxis(path.coefs, 0, -1),
                        intercepts=path.intercepts, dual_gaps=path.gaps,
                        n_features=path.n_selected, converged=path.converged,
                        n_passes=path.n_passes, classes=classes)
    spec = ProblemSpec(loss, factors, fit_intercept, standardize)
    with v.naming_nonfinite_columns(X, names):
        path = table_path(InMemorySource(X, y, s, offset=o), spec, float(l1_ratio), alphas=alphas,
                          n_alphas=n_alphas, eps=eps,
                          options=SolverOptions(tol, max_iter, screening),
                          stops=PathStops(max_features=max_features),
                          gram_max_features=gram_max_features)
    return EnetPath(alphas=path.alphas, coefs=path.coefs.T, intercepts=path.intercepts,
                    dual_gaps=path.gaps, n_features=path.n_features,
                    converged=path.converged, n_passes=path.n_passes, route=path.route)
