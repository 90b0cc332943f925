"""scikit-learn-style estimators."""
from __future__ import annotations

import functools
import logging
import os
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._tags import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as v
from .checkpoint import Checkpoint, fit_fingerprint
from .stats_store import open_store
from .engines import make_engine
from .loading import load_table
from .params import DEFAULT_MAX_LEVELS
from .params import ESTIMATOR_DEFAULTS as D
from .sources import EngineSource, InMemorySource
from .losses import get_loss
from .solvers import compute_alpha_max, fit_elastic_net

log = logging.getLogger("elasticnet_dist")



class FitReport(dict):
    """``fit_report_`` of a table fit: a plain dict whose repr stays short (a table
    of 7,000 columns would otherwise print 7,000 column types in a notebook)."""

    def __repr__(self):
        return "FitReport(%s)" % ", ".join("%s=%s" % (k, _short(v)) for k, v in self.items())


def _short(value, limit=60):
    if isinstance(value, dict):
        if len(value) > 8:
            return "{... %d entries}" % len(value)
        return "{%s}" % ", ".join("%s: %s" % (k, _short(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return "[... %d items]" % len(value)
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

class ElasticNetConvergenceWarning(ConvergenceWarning):
    """The duality gap did not reach the tolerance; carries the certificate.

    Attributes: ``gap`` and ``tol`` (absolute, in objective units), ``n_passes``.
    """

    def __init__(self, gap, tol, n_passes, n_iter, solver):
        self.gap, self.tol, self.n_passes, self.n_iter = gap, tol, n_passes, n_iter
        super().__init__(
            "Objective did not converge: duality gap %.3e > tolerance %.3e after %d data "
            "passes (%d iterations, solver=%r). Increase max_iter, loosen tol, or raise alpha."
            % (gap, tol, n_passes, n_iter, solver)
        )


class ElasticNet(SelectorMixin, BaseEstimator):
    r"""Elastic net for squared or logistic loss, fitted by data-parallel passes.

    Minimises over the intercept ``b`` and coefficients ``w``

    .. math::

        \frac{1}{W}\sum_i s_i\, l(y_i, b + x_i^\top w)
        + \alpha \sum_j v_j \Big(\rho\, |k_j w_j| + \frac{1-\rho}{2} (k_j w_j)^2\Big)

    with ``W = sum_i s_i`` (``s`` the sample weights, 1 by default),
    ``l(y, eta) = (y - eta)^2 / 2`` (``loss="squared"``) or
    ``log(1 + e^eta) - y eta`` with ``y`` in {0, 1} (``loss="logistic"``),
    ``rho = l1_ratio``, ``v = penalty_factor`` and ``k_j`` the population
    (1/W, weighted, centred) standard deviation of column ``j`` when
    ``standardize`` (else 1). The intercept is never penalised. ``alpha`` and
    ``l1_ratio`` mean what they mean in scikit-learn's ``ElasticNet`` and what
    glmnet's ``lambda`` and ``alpha`` mean for the logistic loss; note the 1/2
    on the ridge term. Standardisation is implicit: the data are never copied
    into a standardized matrix.

    With ``glmnet_compat=True`` (or ``"glmnet"``), ``(alpha, l1_ratio)`` are
    read as glmnet's ``(lambda, alpha)``, which are also Spark MLlib's
    ``(regParam, elasticNetParam)`` with ``solver="normal"``: for the squared
    loss both divide the ridge part by the label's population standard
    deviation ``sd_y``, i.e. they solve our objective with
    ``alpha' = alpha l1_ratio + alpha (1 - l1_ratio) / sd_y`` and
    ``l1_ratio' = alpha l1_ratio / alpha'`` (the logistic loss needs no
    mapping). ``glmnet_compat="spark"`` reproduces Spark MLlib's iterative
    solvers (``"l-bfgs"``, the default ``"auto"`` with an L1 part, and
    ``LogisticRegression``), which standardize with the *sample* (n - 1)
    standard deviation: see :func:`elasticnet_dist.penalty.peer_to_native`.
    (glmnet also rescales ``penalty.factor`` to sum to the number of features;
    pass factors scaled that way to reproduce it.)

    Parameters
    ----------
    alpha : float >= 0, default 1.0. 0 is an unpenalised fit.
    l1_ratio : float in [0, 1], default 0.5. 1 is the lasso, 0 ridge.
    loss : {"squared", "logistic", "poisson"}, default "squared". Poisson: counts
        (y >= 0) with the log link; ``predict`` gives the mean count.
    fit_intercept : bool, default True.
    standardize : bool, default True.
    penalty_factor : array of shape (n_features,) >= 0, or a dict column name ->
        factor (features not named get 1), optional. 0 = never penalised.
    tol : float, default 1e-6. Stop when the duality gap is below
        ``tol * D0 / W`` with ``D0`` the null deviance (for the squared loss
        ``sum s (y - ybar)^2``, scikit-learn's ``tol * ||y - ybar||^2 / n``).
    max_iter : int, default 1000. Outer iterations (one data pass each).
    solver : {"auto", "newton", "gram", "fista"}, default "auto".
    glmnet_compat : {False, True, "glmnet", "spark"}, default False.
    warm_start : bool, default False. Start from the previous fit's coefficients
        (same columns), e.g. along a sequence of decreasing alphas.
    engine : {"local", "dask", "spark"} or an engine instance, default "local".
        Where the passes run. ``"dask"`` starts a ``distributed.LocalCluster``
        of worker processes unless ``cluster`` names one; ``"spark"`` uses the
        active SparkSession or ``local[*]`` unless ``cluster`` is a session or
        master URL.
    cluster : str, distributed.Client or SparkSession, optional. A scheduler
        address (``tcp://host:8786``) or Spark master URL (``spark://host:7077``).
    dtype : {"float64", "float32"}, default "float64". Type of the cached
        blocks; every sum is still accumulated in float64.
    nan_policy : {"error", "drop_rows", "impute_mean"}, default "error".
        Missing (null, NaN, inf) values in a table: stop with the column, the
        count and the file; drop the rows; or replace feature values by the
        column mean (rows with a missing label or weight are then dropped).
    block_rows : int, optional. Rows per chunk of the in-memory engine.
    checkpoint_dir : str, optional. A folder where the fit saves its progress
        (every data pass's statistics; for :class:`ElasticNetCV` also every
        solved path point) so that a rerun after the driver was killed resumes
        there and ends with the same numbers; a checkpoint of another input or
        configuration is ignored (:mod:`elasticnet_dist.checkpoint`). A local
        folder or an fsspec URL (opened with ``fit``'s ``storage_options``).
    stats_store : str, optional. A folder or fsspec URL that keeps every Parquet
        piece's statistics between fits on a table of files (the one-pass route's
        Gram sums and moments, by fold): a later fit reads only the files it has
        not seen, with the same numbers bit for bit (see
        :mod:`elasticnet_dist.stats_store`; about K p^2 / 2 float64 per piece).
        After a fit, entries of pieces gone from the table are removed.
    verbose : bool, default False.

    Attributes
    ----------
    coef_ : (n_features,) coefficients on the original scale.
    coef_standardized_ : (n_features,) ``sd_j * coef_j``.
    intercept_ : float.
    constant_features_ : (n_features,) bool; constant columns (coefficient 0).
    n_iter_, n_passes_ : iterations and data passes of the fit.
    dual_gap_ : duality gap at the solution (objective units); ``tol_`` the
        absolute tolerance it met; ``converged_`` whether it did.
    solver_ : the solver used. ``timings_`` : seconds per phase.
    alpha_native_, l1_ratio_native_ : the penalty actually solved (differs
        from ``alpha``, ``l1_ratio`` only under ``glmnet_compat``).
    classes_ : ``array([0, 1])`` for the logistic loss.
    feature_names_in_ : names of the features (for a table: those chosen).
    dropped_features_ : dict name -> reason for the table columns that are
        not features (``non_numeric``, ``all_null``, ``excluded_by_config``,
        ``too_many_levels``); ``dropped_details_``: what a reason counted (the
        levels of a ``too_many_levels`` column).
    categorical_columns_ : the table's categorical columns
        (:class:`~elasticnet_dist.io.categorical.CategoricalColumn`: name and
        levels), whose level features ``<column>=<level>`` end ``feature_names_in_``.
    fit_report_ : dict: engine, workers, partitions, rows, bytes cached, data
        passes, missing-value handling, seconds per phase (``timings``: load,
        statistics, solve) and to start or connect to the cluster
        (``engine_start_s``); for a table, ``source``: its URI, row counts,
        schema fingerprint, files and column types (the manifest's ``input``).
    """

    def __init__(self, alpha=D["alpha"], l1_ratio=D["l1_ratio"], *, loss=D["loss"],
                 fit_intercept=D["fit_intercept"], standardize=D["standardize"],
                 penalty_factor=None, tol=D["tol"], max_iter=D["max_iter"], solver=D["solver"],
                 glmnet_compat=False, warm_start=False, engine="local", cluster=None,
                 dtype=D["dtype"], nan_policy=D["nan_policy"], block_rows=None,
                 checkpoint_dir=None, stats_store=None, verbose=False):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.glmnet_compat = glmnet_compat
        self.warm_start = warm_start
        self.engine = engine
        self.cluster = cluster
        self.dtype = dtype
        self.nan_policy = nan_policy
        self.block_rows = block_rows
        self.checkpoint_dir = checkpoint_dir
        self.stats_store = stats_store
        self.verbose = verbose

    # ---- fitting -------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None, *, offset=None, label=None, weight=None,
            features=None, exclude=None, keys=None, storage_options=None, vector=None,
            max_levels=DEFAULT_MAX_LEVELS):
        """Fit on in-memory arrays ``(X, y)`` or on a table. Returns self.

        A table is a Parquet file, directory, glob or fsspec URL, or a pandas,
        Dask or Spark DataFrame, given with ``label=`` (the label column) and
        optionally ``weight=`` (a weight column), ``features=`` (names and glob
        patterns; default every numeric column other than the label, weight,
        offset and ``keys``) and ``exclude=``.

        ``offset`` (``loss="poisson"``): added to every row's linear predictor,
        ``eta = offset + b + x.w``, with coefficient 1 (the log of each row's
        exposure: the model is then of the count per unit exposure). An array
        of one value per row with arrays, the name of a column with a table.

        ``X`` may be a ``scipy.sparse`` matrix: it stays sparse (CSR blocks, memory
        in proportion to its non-zeros) on every engine. A table's features may
        be one column of Spark ML vectors instead of numeric columns:
        ``vector=`` its name (slots named by the ML attributes Spark wrote into
        the files, else ``<name>_<i>``) or a
        :class:`~elasticnet_dist.sparse.VectorColumn` naming its slots;
        ``features`` and ``exclude`` then match slot names.

        A table's string columns with at most ``max_levels`` distinct values are
        categorical features: one 0/1 feature per level, named ``<column>=<level>``,
        penalised as one group (``sqrt(levels)`` times the L1 weight on the norm of
        their standardized coefficients), so that a column is selected or dropped
        whole (``categorical_columns_``); columns with more levels are dropped as
        ``too_many_levels``, and ``max_levels=0`` drops every string column.
        """
        if _fits_a_table(X, y, sample_weight, label):
            return self._fit_table(X, label=label, weight=weight, features=features,
                                   exclude=exclude, keys=keys, storage_options=storage_options,
                                   offset=offset, vector=vector, max_levels=max_levels)
        X, y, s, factors, names = self._check_input(X, y, sample_weight)
        o = v.check_offset(offset, X.shape[0], self.loss)
        if self.engine == "local" and self.checkpoint_dir is None:
            v.check_table_options(self)
            blocks = X.astype(np.float32) if self.dtype == "float32" else X
            with v.naming_nonfinite_columns(X, names):
                return self._run(InMemorySource(blocks, y, s, block_rows=self.block_rows,
                                                offset=o), factors)
        # validate_data has set (or removed) feature_names_in_ from X already
        table, columns = v.arrays_as_table(X, y, s, names, offset=o)
        return self._fit_table(table, label=v.LABEL, weight=None if s is None else v.WEIGHT,
                               **columns, exclude=None, keys=None, names_from_table=False,
                               offset=None if o is None else v.OFFSET)

    def _fit_table(self, table, *, label, weight, features, exclude, keys, storage_options=None,
                   names_from_table=True, fold_column=None, offset=None, vector=None,
                   max_levels=0):
        self._validate_params(None)
        v.check_table_options(self)  # before a cluster is started for nothing
        t0 = time.perf_counter()
        engine = make_engine(self.engine, self.cluster)
        t_start = time.perf_counter() - t0
        try:
            store = open_store(self.stats_store, storage_options)
            load_options = dict(label=label, weight=weight, offset=offset, features=features,
                                exclude=exclude, keys=keys, loss=self.loss, dtype=self.dtype,
                                nan_policy=self.nan_policy, storage_options=storage_options,
                                stats_store=store, vector=vector, max_levels=max_levels)
            loaded = load_table(table, engine, **load_options, **self._fold_options(fold_column))
            plan = loaded.plan
            factors = v.penalty_factors_by_name(self.penalty_factor, plan.features,
                                                plan.source_columns)
            checkpoint = None
            if self.checkpoint_dir is not None:
                checkpoint = Checkpoint(self.checkpoint_dir, fit_fingerprint(self, loaded),
                                        storage_options)
            source = EngineSource(engine)
            if names_from_table and loaded.decoder.label_classes:  # a multinomial label
                self._label_classes = np.array(loaded.decoder.label_classes)
            self._table_features = plan.features  # by name, for a warm start
            # the column of vectors the features came from (None: numeric columns, arrays)
            self.vector_column_ = loaded.decoder.vector if names_from_table else None
            self._run(source if checkpoint is None else checkpoint.source(source), factors,
                      t_load=loaded.seconds)
            if checkpoint is not None:
                log.info("checkpoint: %s", checkpoint.summary())
            self.fit_report_ = FitReport(self.fit_report_, **loaded.describe(),
                                         engine_start_s=t_start, source=loaded.provenance())
            self._fit_stability(table, engine, load_options, fold_column, plan, factors)
            if store is not None:
                store.prune()
        finally:
            if engine is not self.engine:
                engine.close()
        if names_from_table:
            self.feature_names_in_ = np.asarray(plan.features, dtype=object)
        self.n_features_in_ = len(plan.features)
        self.dropped_features_ = dict(plan.dropped)
        self.dropped_details_ = dict(plan.details)
        # the categorical columns whose levels are the last features (arrays: none)
        self.categorical_columns_ = plan.categorical
        return self

    def _validate_params(self, feature_names):
        """Checked hyper-parameters; the penalty factors for ``feature_names``."""
        return v.check_params(self, feature_names)

    def _fold_options(self, fold_column):
        """How :func:`~elasticnet_dist.io.load_table` assigns folds (none for one fit)."""
        return {}

    def _fit_stability(self, table, engine, load_options, fold_column, plan, factors):
        """After a fit on a table: selection frequencies over half-samples (see
        :class:`~elasticnet_dist.ElasticNetCV`; a single fit has none)."""

    def _set_classes(self):
        loss = get_loss(self.loss)
        classes = self._label_classes if loss.multiclass else loss.classes
        if classes is not None:
            self.classes_ = np.array(classes)
        elif hasattr(self, "classes_"):
            del self.classes_

    def _classes(self):
        """The multinomial loss's classes, whose indices the labels are (None for any
        other loss)."""
        return self.classes_ if get_loss(self.loss).multiclass else None

    def _run(self, source, factors, t_load=0.0):
        self._set_classes()
        p = source.n_features
        warm = self.warm_start and getattr(self, "coef_", None) is not None \
            and self.coef_.shape == (p,)
        fit = fit_elastic_net(
            source, loss=self.loss, alpha=float(self.alpha), l1_ratio=float(self.l1_ratio),
            penalty_factor=factors, fit_intercept=self.fit_intercept,
            standardize=self.standardize, tol=float(self.tol), max_iter=int(self.max_iter),
            solver=self.solver, glmnet_compat=self.glmnet_compat, verbose=self.verbose,
            coef_init=self.coef_ if warm else None,
            intercept_init=self.intercept_ if warm else None, classes=self._classes())
        fit.timings = {"load": t_load, **fit.timings}
        self.dropped_features_, self.dropped_details_, self.categorical_columns_ = {}, {}, ()
        self._store(fit)
        self.fit_report_ = {"engine": "local", "workers": 1, "partitions": 1,
                            "rows": int(source.n_rows), "n_passes": fit.n_passes,
                            "timings": dict(self.timings_), "engine_start_s": 0.0}
        return self

    def _check_input(self, X, y, sample_weight):
        """Validated (X, y, weights, penalty factors, column names), or a ValueError
        that names the parameter, the column or the rows at fault."""
        self._validate_params(None)  # the parameters first, with their own messages
        out = v.check_data(X, y, sample_weight, loss=self.loss,
                           penalty_factors=self._validate_params,
                           validate=functools.partial(validate_data, self))
        loss = get_loss(self.loss)
        if loss.multiclass:  # the labels are now the classes' indices
            labels, s = np.asarray(y).ravel(), out[2]
            self._label_classes = loss.classes_of(labels if s is None else labels[s > 0])
        return out

    def _store(self, fit):
        res = fit.result
        self.coef_ = fit.coef
        self.intercept_ = fit.intercept if np.ndim(fit.intercept) else float(fit.intercept)
        self.coef_standardized_ = fit.coef_standardized
        self.constant_features_ = fit.constant
        self.n_iter_ = res.n_iter
        self.n_passes_ = fit.n_passes
        self.dual_gap_ = res.gap
        self.tol_ = res.tol_abs
        self.converged_ = bool(res.converged)
        self.solver_ = fit.solver
        self.timings_ = dict(fit.timings)
        self.alpha_native_ = fit.alpha
        self.l1_ratio_native_ = fit.l1_ratio
        if not res.converged:
            warnings.warn(ElasticNetConvergenceWarning(res.gap, res.tol_abs, fit.n_passes,
                                                       res.n_iter, fit.solver), stacklevel=3)

    # ---- prediction ----------------------------------------------------------------
    def _linear_predictor(self, X, offset=None):
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        if names is not None and hasattr(X, "columns") and len(X.columns) != len(names) \
                and set(names) <= set(X.columns):
            X = X[list(names)]  # a table with the label and other columns: take the features
        X = validate_data(self, X, dtype=np.float64, reset=False, accept_sparse="csr")
        if np.ndim(self.coef_) == 2:  # the multinomial loss: one predictor per class
            return np.asarray(X @ self.coef_.T) + self.intercept_
        eta = np.asarray(X @ self.coef_).ravel() + self.intercept_
        o = v.check_offset(offset, X.shape[0], self.loss)
        return eta if o is None else eta + o

    def predict(self, X, offset=None):
        """Predicted values (squared loss), class labels 0/1 (logistic loss), mean
        counts ``exp(offset + b + X w)`` (Poisson loss; ``offset``: the rows' log
        exposures, 0 if not given) or the most likely of ``classes_`` (multinomial)."""
        eta = self._linear_predictor(X, offset)
        if get_loss(self.loss).multiclass:
            return self.classes_[np.argmax(eta, axis=1)]
        return get_loss(self.loss).predict(eta)

    def _is_classifier(self):
        loss = get_loss(self.loss)
        return loss.classes is not None or loss.multiclass

    @available_if(_is_classifier)
    def decision_function(self, X):
        """The linear predictor ``b + X w`` (log-odds of class 1), or one per class
        (n x C, multinomial)."""
        return self._linear_predictor(X)

    @available_if(_is_classifier)
    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``."""
        eta = self._linear_predictor(X)
        if eta.ndim == 2:
            return get_loss(self.loss).probabilities(eta)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * eta))  # stable sigmoid
        return np.column_stack([1.0 - p1, p1])

    def score(self, X, y, sample_weight=None, offset=None):
        """R^2 (squared loss), accuracy (logistic and multinomial losses) or D^2, the
        fraction of deviance explained (Poisson loss, with the rows' ``offset`` if
        given)."""
        if get_loss(self.loss).multiclass:
            from sklearn.metrics import accuracy_score

            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return get_loss(self.loss).score(y, self._linear_predictor(X, offset), sample_weight)

    # ---- feature selection ---------------------------------------------------------
    def _get_support_mask(self):
        """The selected features (multinomial: a feature is selected for every class
        or for none)."""
        check_is_fitted(self)
        return self.coef_ != 0 if np.ndim(self.coef_) == 1 else np.any(self.coef_ != 0, axis=0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True  # scipy.sparse X stays sparse (CSR blocks)
        if self._is_classifier():
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=get_loss(self.loss).multiclass)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags


def alpha_max(X, y, *, l1_ratio=1.0, loss="squared", sample_weight=None, fit_intercept=True,
              standardize=True, penalty_factor=None, offset=None):
    """The smallest ``alpha`` for which :class:`ElasticNet` selects no feature.

    Computed at the fit of the intercept (and of the features with penalty
    factor 0) alone: ``max_j |grad_j L| / (l1_ratio v_j k_j / sd_j)`` over the
    penalised features. Infinite for ``l1_ratio = 0`` (ridge never zeroes).
    """
    probe = ElasticNet(l1_ratio=l1_ratio, loss=loss, fit_intercept=fit_intercept,
                       standardize=standardize, penalty_factor=penalty_factor)
    X, y, s, factors, names = probe._check_input(X, y, sample_weight)
    o = v.check_offset(offset, X.shape[0], loss)
    with v.naming_nonfinite_columns(X, names):
        return compute_alpha_max(InMemorySource(X, y, s, offset=o), loss=loss, l1_ratio=l1_ratio,
                                 penalty_factor=factors, fit_intercept=fit_intercept,
                                 standardize=standardize)


def _fits_a_table(X, y, sample_weight, label):
    """Is ``fit`` given a table (and then label=, not y or sample_weight)?"""
    if label is None and not _is_table(X):
        return False
    if y is not None or sample_weight is not None:
        raise ValueError("fit on a table takes label= (and weight=), not y or sample_weight")
    if label is None:
        raise ValueError("fit on a table needs label=: the name of the label column")
    return True


def _is_table(X):
    """Paths, URLs and distributed DataFrames are tables; arrays and pandas are not."""
    if isinstance(X, (str, os.PathLike)):
        return True
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, (str, os.PathLike)) for x in X):
        return True
    module = type(X).__module__
    return module.startswith(("dask", "pyspark")) or type(X).__name__ == "Table"
