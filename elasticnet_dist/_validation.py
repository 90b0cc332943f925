"""Checks of parameters and in-memory data, with messages that name the culprit."""
from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _num_samples

from .errors import NonFiniteDataError
from .losses import LOSSES
from .penalty import COMPAT_MODES
from .solvers import SOLVERS


def check_params(est, feature_names=None):
    """Validate an estimator's hyper-parameters; return the penalty factors as an
    array for ``feature_names`` (None before a table's features are known)."""
    _check_real("alpha", est.alpha, low=0.0)
    _check_real("l1_ratio", est.l1_ratio, low=0.0, high=1.0)
    _check_common(est)
    if est.solver not in SOLVERS:
        raise ValueError("solver=%r is not supported; choose one of %s"
                         % (est.solver, list(SOLVERS)))
    if est.solver == "gram" and est.loss != "squared":
        raise ValueError("solver='gram' supports loss='squared' only, not loss=%r" % est.loss)
    compat = est.glmnet_compat
    if not (isinstance(compat, (bool, np.bool_)) or compat in ("glmnet", "spark")):
        raise ValueError("glmnet_compat=%r is not supported; choose one of %s"
                         % (est.glmnet_compat, list(COMPAT_MODES)))
    _check_flags(est, "warm_start")
    if feature_names is None:  # a table: the features are known after loading
        return None
    return penalty_factors_by_name(est.penalty_factor, feature_names)


def check_cv_params(est, feature_names=None):
    """:func:`check_params` for :class:`~elasticnet_dist.ElasticNetCV`."""
    from .solvers.cv import METRICS, RULES

    _check_common(est)
    ratios = np.atleast_1d(np.asarray(est.l1_ratio, dtype=object))
    if ratios.ndim != 1 or ratios.size == 0:
        raise ValueError("l1_ratio must be a number or a non-empty list, got %r"
                         % (est.l1_ratio,))
    for r in ratios:
        _check_real("l1_ratio", r, low=0.0, high=1.0)
    if not (isinstance(est.n_alphas, str) and est.n_alphas == "deprecated"):
        warnings.warn("n_alphas is deprecated (as in scikit-learn 1.7, which removed it in "
                      "1.9): give the number of alphas as alphas=%r" % (est.n_alphas,),
                      FutureWarning, stacklevel=4)
        _check_int("n_alphas", est.n_alphas, low=1)
        if est.alphas is not None:
            raise ValueError("give either alphas (a number or a list) or the deprecated "
                             "n_alphas, not both")
    if isinstance(est.alphas, numbers.Integral) and not isinstance(est.alphas, bool):
        _check_int("alphas", est.alphas, low=1)
    elif est.alphas is not None:
        alphas = np.asarray(est.alphas, dtype=np.float64)
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) \
                or np.any(alphas <= 0):
            raise ValueError("alphas must be a non-empty list of finite values > 0")
    if est.eps is not None:
        _check_real("eps", est.eps, low=0.0, high=1.0)
        if not 0 < est.eps < 1:
            raise ValueError("eps must be in (0, 1), got %r" % (est.eps,))
    cv = est.cv
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError("cv must be at least 2 folds, got %r" % cv)
    elif not (hasattr(cv, "split") or hasattr(cv, "__iter__")):
        raise ValueError("cv must be a number of folds, a scikit-learn splitter or a list "
                         "of (train, test) splits, got %r" % (cv,))
    if est.selection not in RULES:
        raise ValueError("selection=%r is not supported; choose one of %s"
                         % (est.selection, list(RULES)))
    if est.max_features is not None:
        _check_int("max_features", est.max_features, low=1)
    if est.scoring is not None and est.scoring not in METRICS[est.loss]:
        raise ValueError("scoring=%r is not available for loss=%r; choose one of %s"
                         % (est.scoring, est.loss, list(METRICS[est.loss])))
    _check_int("gram_max_features", est.gram_max_features, low=0)
    _check_int("fold_seed", est.fold_seed, low=0)
    for name in ("devmax", "fdev"):
        value = getattr(est, name)
        if value is not None:
            _check_real(name, value, low=0.0, high=1.0)
    _check_flags(est, "screening")
    if feature_names is None:
        return None
    return penalty_factors_by_name(est.penalty_factor, feature_names)


def _check_common(est):
    """What ElasticNet and ElasticNetCV share: loss, tolerance, iterations, flags."""
    _check_real("tol", est.tol, low=0.0)
    if est.loss not in LOSSES:
        raise ValueError("loss=%r is not supported; choose one of %s" % (est.loss, sorted(LOSSES)))
    _check_int("max_iter", est.max_iter, low=1)
    _check_flags(est, "fit_intercept", "standardize")


def _check_int(name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError("%s must be an integer >= %d, got %r" % (name, low, value))


def _check_flags(est, *names):
    for name in names:
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError("%s must be True or False, got %r" % (name, getattr(est, name)))


def check_table_options(est):
    """The block dtype and missing-value policy of an estimator (its engine is
    checked by :func:`~elasticnet_dist.engines.make_engine`)."""
    from .io.load import check_load_options

    check_load_options(est.dtype, est.nan_policy)


def penalty_factors_by_name(penalty_factor, features):
    """Penalty factors for a table's features: None, an array in feature order, or a
    dict name -> factor (features not named get 1)."""
    p = len(features)
    if isinstance(penalty_factor, dict):
        unknown = sorted(set(penalty_factor) - set(features))
        if unknown:
            raise ValueError("penalty_factor names %d column(s) that are not features: %s"
                             % (len(unknown), unknown[:5]))
        factors = np.array([penalty_factor.get(n, 1.0) for n in features], dtype=np.float64)
    elif penalty_factor is None:
        return np.ones(p)
    else:
        factors = np.asarray(penalty_factor, dtype=np.float64)
        if factors.shape != (p,):
            raise ValueError("penalty_factor has shape %s; there are %d features"
                             % (factors.shape, p))
    bad = np.flatnonzero(~np.isfinite(factors) | (factors < 0))
    if bad.size:
        raise ValueError("penalty_factor must be finite and >= 0; feature %r has %r"
                         % (features[bad[0]], factors[bad[0]]))
    return factors


#: Column names used when in-memory arrays are handed to a cluster engine.
LABEL, WEIGHT, FOLD = "__label__", "__weight__", "__fold__"


def arrays_as_table(X, y, s, names, folds=None):
    """Validated arrays as an Arrow table (features, then ``LABEL``, ``WEIGHT`` and
    ``FOLD``)."""
    import pyarrow as pa

    cols = {name: X[:, j] for j, name in enumerate(names)}
    cols[LABEL] = y
    if s is not None:
        cols[WEIGHT] = s
    if folds is not None:
        cols[FOLD] = folds
    return pa.table(cols)


def _check_real(name, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError("%s must be a real number, got %r" % (name, value))
    if not np.isfinite(value):
        raise ValueError("%s must be finite, got %r" % (name, value))
    if (low is not None and value < low) or (high is not None and value > high):
        rng = "[%s, %s]" % (low, "inf" if high is None else high)
        raise ValueError("%s must be in %s, got %r" % (name, rng, value))


def check_same_rows(X, y, sample_weight=None):
    """X, y (and sample_weight) must have the same number of rows."""
    n = _num_samples(X)
    for name, arr in (("y", y), ("sample_weight", sample_weight)):
        if arr is None:
            continue
        m = _num_samples(arr)
        if m != n:
            raise ValueError("%s has %s rows; X has %d" % (name, m, n))


def column_names(columns, n_features):
    """Names for messages: a DataFrame's columns, else x0, x1, ..."""
    if columns is not None and len(columns) == n_features:
        return [str(c) for c in columns]
    return ["x%d" % j for j in range(n_features)]


def check_numeric_columns(X):
    """A DataFrame's feature columns must be numeric (or boolean); name those that are not."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return
    bad = [(str(c), str(t)) for c, t in zip(X.columns, dtypes, strict=True)
           if getattr(t, "kind", "O") not in "biuf"]
    if bad:
        shown = ", ".join("%r (%s)" % b for b in bad[:5])
        raise ValueError("X has %d non-numeric column(s): %s; drop or encode them"
                         % (len(bad), shown))


def check_finite_X(X, names):
    """Raise a ValueError naming the first column of X with NaN or inf values."""
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    cols = np.flatnonzero(bad.any(axis=0))
    j = cols[0]
    n_nan = int(np.isnan(X[:, j]).sum())
    n_inf = int(bad[:, j].sum()) - n_nan
    rows = np.flatnonzero(bad[:, j])[:5].tolist()
    raise ValueError(
        "X column %r has %d NaN and %d inf values (first rows %s); %d column(s) in all are "
        "affected. Clean the input or drop those rows." % (names[j], n_nan, n_inf, rows, cols.size)
    )


@contextlib.contextmanager
def naming_nonfinite_columns(X, names):
    """Turn a NonFiniteDataError from the moments pass into a message with names.

    The pass sees every value, so the happy path needs no separate scan; only
    on failure is X scanned to name the column, the count and the first rows.
    """
    try:
        yield
    except NonFiniteDataError as exc:
        check_finite_X(X, names)  # raises with the details when values are NaN/inf
        j = exc.columns[0]
        raise ValueError("X column %r overflows float64 in its sums of squares (largest "
                         "magnitude %.3g); rescale it"
                         % (names[j], np.max(np.abs(X[:, j])))) from None


def check_finite_vector(name, v):
    bad = ~np.isfinite(v)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError("%s has %d NaN or inf values (first rows %s)"
                         % (name, int(bad.sum()), rows))


def check_finite_labels(y):
    """Numeric labels must be finite (a message with the count and the first rows)."""
    arr = np.asarray(y)
    if arr.dtype.kind in "fc":
        check_finite_vector("y", arr.ravel())


def check_binary_labels(y_present, y):
    """Logistic labels must be 0/1 (or booleans), both present; returns y as floats.

    ``y_present`` are the labels of rows with positive weight. Messages carry
    scikit-learn's phrases ('Unknown label type', 'Only binary classification')
    so that its estimator checks recognise them.
    """
    kind = type_of_target(y_present)
    if kind in ("continuous", "continuous-multioutput"):
        raise ValueError("Unknown label type: %s. y must hold labels 0 and 1 for "
                         "loss='logistic'" % kind)
    if kind not in ("binary", "multiclass"):
        raise ValueError("Unknown label type: %s. y must be a vector of labels 0 and 1 "
                         "for loss='logistic'" % kind)
    values = np.unique(np.asarray(y_present))
    if values.size > 2:
        raise ValueError("Only binary classification is supported: y must hold labels 0 "
                         "and 1 for loss='logistic'; found %d classes" % values.size)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise ValueError("y must hold labels 0 and 1 for loss='logistic'; found %s"
                         % np.unique(np.asarray(y_present))[:5].tolist())
    if values.size < 2:
        raise ValueError("y holds a single class (%g) for loss='logistic'; both 0 and 1 are "
                         "needed" % values[0])
    return np.asarray(y, dtype=np.float64).ravel()


def check_weights(sample_weight, n_rows):
    s = np.asarray(sample_weight, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] != n_rows:
        raise ValueError("sample_weight has shape %s; X has %d rows" % (s.shape, n_rows))
    check_finite_vector("sample_weight", s)
    if np.any(s < 0):
        raise ValueError("sample_weight must be >= 0; row %d has %r"
                         % (int(np.flatnonzero(s < 0)[0]), float(s[s < 0][0])))
    if not np.any(s > 0):
        raise ValueError("sample_weight is zero for every row")
    return s
