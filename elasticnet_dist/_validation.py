"""Checks of parameters and in-memory data, with messages that name the culprit."""
from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
from sklearn.utils.validation import _num_samples

from .errors import NonFiniteDataError
from .losses import MAX_ABS_OFFSET, check_offset_loss, check_solver_supports, get_loss
from .params import check_value
from .penalty import COMPAT_MODES
from .sparse import VectorColumn, as_csr, csr_to_vectors, issparse


def check_params(est, feature_names=None):
    """Validate an estimator's hyper-parameters; return the penalty factors as an
    array for ``feature_names`` (None before a table's features are known)."""
    check_value("alpha", est.alpha, required=True)
    check_value("l1_ratio", est.l1_ratio)
    _check_common(est)
    check_value("solver", est.solver)
    check_solver_supports(est.solver, est.loss, needs_quadratic=est.solver == "gram")
    compat = est.glmnet_compat
    if not (isinstance(compat, (bool, np.bool_)) or compat in ("glmnet", "spark")):
        raise ValueError("glmnet_compat=%r is not supported; choose one of %s"
                         % (est.glmnet_compat, list(COMPAT_MODES)))
    if not isinstance(est.warm_start, (bool, np.bool_)):
        raise ValueError("warm_start must be True or False, got %r" % (est.warm_start,))
    if feature_names is None:  # a table: the features are known after loading
        return None
    return penalty_factors_by_name(est.penalty_factor, feature_names)


def check_cv_params(est, feature_names=None):
    """:func:`check_params` for :class:`~elasticnet_dist.ElasticNetCV`."""
    _check_common(est)
    ratios = np.atleast_1d(np.asarray(est.l1_ratio, dtype=object))
    if ratios.ndim != 1 or ratios.size == 0:
        raise ValueError("l1_ratio must be a number or a non-empty list, got %r"
                         % (est.l1_ratio,))
    for r in ratios:
        check_value("l1_ratio", r)
    if not (isinstance(est.n_alphas, str) and est.n_alphas == "deprecated"):
        warnings.warn("n_alphas is deprecated (as in scikit-learn 1.7, which removed it in "
                      "1.9): give the number of alphas as alphas=%r" % (est.n_alphas,),
                      FutureWarning, stacklevel=4)
        check_value("n_alphas", est.n_alphas)
        if est.alphas is not None:
            raise ValueError("give either alphas (a number or a list) or the deprecated "
                             "n_alphas, not both")
    check_alphas(est.alphas)
    check_value("eps", est.eps)
    cv = est.cv
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError("cv must be at least 2 folds, got %r" % cv)
    elif not (hasattr(cv, "split") or hasattr(cv, "__iter__")):
        raise ValueError("cv must be a number of folds, a scikit-learn splitter or a list "
                         "of (train, test) splits, got %r" % (cv,))
    check_value("selection", est.selection)
    check_value("max_features", est.max_features)
    metrics = get_loss(est.loss).metrics
    if est.scoring is not None and est.scoring not in metrics:
        raise ValueError("scoring=%r is not available for loss=%r; choose one of %s"
                         % (est.scoring, est.loss, list(metrics)))
    for name in ("gram_max_features", "fold_seed", "devmax", "fdev", "early_stop", "screening",
                 "stability", "stability_groups", "min_stability"):
        check_value(name, getattr(est, name))
    for name in ("stability", "stability_groups"):
        if getattr(est, name) % 2:
            raise ValueError("%s must be even (complementary pairs of half-samples), got %r"
                             % (name, getattr(est, name)))
    if est.min_stability is not None and not est.stability:
        raise ValueError("min_stability=%r keeps the features selected often enough over "
                         "half-samples; set stability (e.g. 50) to draw them"
                         % est.min_stability)
    if feature_names is None:
        return None
    return penalty_factors_by_name(est.penalty_factor, feature_names)


def _check_common(est):
    """What ElasticNet and ElasticNetCV share: loss, tolerance, iterations, flags."""
    for name in ("loss", "tol", "max_iter", "fit_intercept", "standardize"):
        check_value(name, getattr(est, name))


def check_table_options(est):
    """The block dtype and missing-value policy of an estimator (its engine is
    checked by :func:`~elasticnet_dist.engines.make_engine`)."""
    from .io.load import check_load_options

    check_load_options(est.dtype, est.nan_policy)


def penalty_factors_by_name(penalty_factor, features, columns=None):
    """Penalty factors for a table's features: None, an array in feature order, or a
    dict name -> factor (features not named get 1). ``columns``: feature -> the
    column it is read from, where they differ (a categorical column's levels, which
    share the factor given to the column: one group, one factor)."""
    p = len(features)
    columns = columns or {}
    if isinstance(penalty_factor, dict):
        unknown = sorted(set(penalty_factor) - set(features) - set(columns.values()))
        if unknown:
            raise ValueError("penalty_factor names %d column(s) that are not features: %s"
                             % (len(unknown), unknown[:5]))
        factors = np.array([penalty_factor.get(n, penalty_factor.get(columns.get(n), 1.0))
                            for n in features], dtype=np.float64)
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
    first = {}
    for name, factor in zip(features, factors, strict=True):
        column = columns.get(name, name)
        if first.setdefault(column, factor) != factor:
            raise ValueError("penalty_factor gives the levels of categorical column %r "
                             "different factors; a column's levels are one group and share "
                             "one factor (give it by the column's name)" % column)
    return factors


#: Column names used when in-memory arrays are handed to a cluster engine.
LABEL, WEIGHT, OFFSET, FOLD = "__label__", "__weight__", "__offset__", "__fold__"
#: The vector column holding a sparse X's rows.
FEATURES = "__features__"


def arrays_as_table(X, y, s, names, folds=None, offset=None):
    """Validated arrays as an Arrow table (features, then ``LABEL``, ``WEIGHT``,
    ``OFFSET`` and ``FOLD``) and the options that load its features: a sparse X
    becomes one column ``FEATURES`` of sparse Spark ML vectors (never dense)."""
    import pyarrow as pa

    if issparse(X):
        cols = {FEATURES: csr_to_vectors(X)}
        options = {"features": None, "vector": VectorColumn(FEATURES, names)}
    else:
        cols = {name: X[:, j] for j, name in enumerate(names)}
        options = {"features": None}
    cols[LABEL] = y
    if s is not None:
        cols[WEIGHT] = s
    if offset is not None:
        cols[OFFSET] = offset
    if folds is not None:
        cols[FOLD] = folds
    return pa.table(cols), options


def check_offset(offset, n_rows, loss):
    """In-memory offsets: None, or ``n_rows`` finite values for a loss that takes them."""
    if offset is None:
        return None
    if isinstance(offset, str):
        raise ValueError("offset=%r names a column, but fit was given arrays: pass the "
                         "offsets as an array of %d values" % (offset, n_rows))
    check_offset_loss(offset, loss)
    o = np.asarray(offset, dtype=np.float64)
    if o.ndim != 1 or o.shape[0] != n_rows:
        raise ValueError("offset has shape %s; X has %d rows" % (o.shape, n_rows))
    check_finite_vector("offset", o)
    if o.size and np.max(np.abs(o)) > MAX_ABS_OFFSET:
        raise ValueError("offset has values of magnitude %.3g; an offset is added to the log "
                         "of the mean, so give the log of the exposure, not the exposure"
                         % np.max(np.abs(o)))
    return o


def check_data(X, y, sample_weight, *, loss, penalty_factors, validate=None):
    """Validated in-memory data: ``(X, y, weights, penalty factors, column names)``,
    or a ValueError that names the parameter, the column or the rows at fault.

    ``penalty_factors(names)`` gives the factors for the column names;
    ``validate(X, y, **checks)`` converts the arrays (scikit-learn's
    ``validate_data`` bound to an estimator, which records the feature names;
    ``check_X_y`` by default)."""
    from sklearn.utils.validation import check_X_y

    check_same_rows(X, y, sample_weight)
    check_finite_labels(y)
    check_numeric_columns(X)
    columns = getattr(X, "columns", None)
    loss = get_loss(loss)
    X, y = (validate or check_X_y)(X, y, dtype=np.float64, ensure_all_finite=False,
                                   y_numeric=loss.classes is None and not loss.multiclass,
                                   ensure_min_samples=2,
                                   accept_sparse="csr")
    if issparse(X):
        X = as_csr(X)
    names = column_names(columns, X.shape[1])
    factors = penalty_factors(names)
    s = None if sample_weight is None else check_weights(sample_weight, X.shape[0])
    y = loss.check_labels(y if s is None else y[s > 0], y)
    return X, y, s, factors, names


def check_alphas(alphas):
    """``alphas``: None, a number of alphas, or a non-empty list of finite values > 0."""
    if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool):
        check_value("n_alphas", alphas, label="alphas")
    elif alphas is not None:
        values = np.asarray(alphas, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) \
                or np.any(values <= 0):
            raise ValueError("alphas must be a non-empty list of finite values > 0")


def check_path_params(l1_ratio, loss, eps, n_alphas, tol, max_iter, screening, max_features,
                      gram_max_features, fit_intercept, standardize):
    """:func:`~elasticnet_dist.enet_path`'s parameters, checked as the estimators' are."""
    if np.ndim(l1_ratio) != 0:
        raise ValueError("enet_path takes one l1_ratio, got %r" % (l1_ratio,))
    for name, value in (("l1_ratio", l1_ratio), ("loss", loss), ("eps", eps),
                        ("n_alphas", n_alphas), ("tol", tol), ("max_iter", max_iter),
                        ("screening", screening), ("max_features", max_features),
                        ("gram_max_features", gram_max_features),
                        ("fit_intercept", fit_intercept), ("standardize", standardize)):
        check_value(name, value)


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
    """Raise a ValueError naming the first column of X (dense or sparse) with NaN or
    inf values."""
    rows, cols, values = _nonfinite_cells(X)
    if not cols.size:
        return
    j = cols.min()
    in_j = cols == j
    n_nan = int(np.isnan(values[in_j]).sum())
    raise ValueError(
        "X column %r has %d NaN and %d inf values (first rows %s); %d column(s) in all are "
        "affected. Clean the input or drop those rows."
        % (names[j], n_nan, int(in_j.sum()) - n_nan, np.sort(rows[in_j])[:5].tolist(),
           np.unique(cols).size))


def _nonfinite_cells(X):
    """Rows, columns and values of X's NaN and inf entries (a sparse X's stored ones)."""
    if issparse(X):
        C = X.tocoo()
        bad = ~np.isfinite(C.data)
        return C.row[bad], C.col[bad], C.data[bad]
    rows, cols = np.nonzero(~np.isfinite(X))
    return rows, cols, X[rows, cols]


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
                         % (names[j], abs(X[:, j]).max())) from None


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
