"""Checks of a loaded table, from the block summaries alone, before any solver runs.

Each check raises an :class:`~elasticnet_dist.errors.InputError` whose message
names the column, the count and a file holding the first offending rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BadValuesError, EmptyTableError
from ..losses import MAX_ABS_OFFSET, get_loss

#: How many offending columns a message lists by name.
SHOWN = 5
#: Magnitudes a column may reach, per block dtype: the sums of squares and products
#: the passes form (over up to 1e12 rows) neither overflow nor underflow inside it.
SCALE_RANGE = {"float64": (1e-140, 1e140), "float32": (1e-15, 1e15)}


@dataclass
class LoadReport:
    """What loading found and did: rows, dropped rows, imputed values, all-null columns."""

    n_rows_read: int
    n_rows: int
    rows_dropped: int = 0
    values_imputed: int = 0
    nan_policy: str = "error"
    all_null: list = field(default_factory=list)


def all_null_columns(summaries, plan):
    """Feature columns whose every value is null (dropped with reason ``all_null``)."""
    rows = sum(s.n_rows_read for s in summaries)
    nulls = np.sum([s.null_x for s in summaries], axis=0) if summaries else 0
    if rows == 0:
        return []
    return [plan.features[j] for j in np.flatnonzero(np.asarray(nulls) == rows)]


def extreme_scale_columns(summaries, plan, dtype="float64"):
    """``{feature: largest |value|}`` for features whose values vary but whose
    magnitude lies outside :data:`SCALE_RANGE`: their squares underflow to 0 (the
    column would look constant) or overflow to inf. They are dropped with reason
    ``extreme_scale`` and a warning, instead of silently (or with an index)."""
    his = [s.hi_x for s in summaries if s.hi_x is not None]
    if not his:
        return {}
    with np.errstate(invalid="ignore"):
        hi = np.fmax.reduce(np.array(his), axis=0)
        lo = np.fmin.reduce(np.array([s.lo_x for s in summaries if s.lo_x is not None]),
                            axis=0)
        size = np.fmax(np.abs(hi), np.abs(lo))
        low, high = SCALE_RANGE[dtype]
        bad = np.isfinite(size) & (hi != lo) & ((size < low) | (size > high))
    return {plan.features[j]: float(size[j]) for j in np.flatnonzero(bad)}


def rounded_columns(summaries):
    """Integer columns beyond 2^53 that were cast to float with rounding, in order."""
    return list(dict.fromkeys(name for s in summaries for name in s.rounded))


def impute_means(summaries):
    """Per-feature means of the finite values (``nan_policy="impute_mean"``)."""
    total = np.sum([s.finite_sum_x for s in summaries], axis=0)
    count = np.sum([s.finite_count_x for s in summaries], axis=0)
    return tuple(np.where(count > 0, total / np.maximum(count, 1), 0.0).tolist())


def needs_imputation(summaries):
    return any(s.nonfinite_x.any() for s in summaries)


def check_loaded(summaries, plan, *, loss, nan_policy, where):
    """Raise on unusable data; return a :class:`LoadReport` otherwise."""
    n_read = sum(s.n_rows_read for s in summaries)
    n_rows = sum(s.n_rows for s in summaries)
    if n_read == 0:
        raise EmptyTableError("%s has no rows" % where)
    report = LoadReport(n_rows_read=n_read, n_rows=n_rows, nan_policy=nan_policy,
                        rows_dropped=sum(s.rows_dropped for s in summaries),
                        values_imputed=sum(s.values_imputed for s in summaries))
    if nan_policy == "error":
        _check_finite_label(summaries, plan)
        _check_finite_features(summaries, plan)
    _check_scale(max(s.absmax_y for s in summaries), "label", plan.label)
    if plan.weight is not None:
        _check_weights(summaries, plan, nan_policy)
        _check_scale(max(s.absmax_s for s in summaries), "weight", plan.weight)
    if plan.offset is not None:
        _check_offsets(summaries, plan, nan_policy)
    if n_rows == 0:
        raise EmptyTableError("no rows of %s are left after nan_policy=%r dropped %d rows "
                              "with missing values" % (where, nan_policy, report.rows_dropped))
    _check_labels(summaries, plan, loss)
    if sum(s.weight_sum for s in summaries) <= 0:
        raise BadValuesError("weight column %r is zero on every row" % plan.weight)
    return report


def _first_piece(summaries, count):
    for s in summaries:
        if count(s):
            return s.piece
    return "?"


def _check_finite_label(summaries, plan):
    bad = sum(s.nonfinite_y for s in summaries)
    if bad:
        first = _first_piece(summaries, lambda s: s.nonfinite_y)
        raise BadValuesError(
            "label column %r has %d missing (null, NaN or inf) values, first in %s; clean "
            "them or set nan_policy='drop_rows'" % (plan.label, bad, first))


def _check_finite_features(summaries, plan):
    counts = np.sum([s.nonfinite_x for s in summaries], axis=0)
    bad = np.flatnonzero(counts)
    if not bad.size:
        return
    columns = plan.source_columns  # a categorical column's levels: the column, once
    first = {}
    for k in bad:
        first.setdefault(columns[plan.features[k]], k)
    j = bad[0]
    shown = ", ".join("%r (%d)" % (name, counts[k]) for name, k in list(first.items())[:SHOWN])
    raise BadValuesError(
        "%d feature column(s) hold missing (null, NaN or inf) values: %s%s; the first, %r, "
        "in %s. Clean them or set nan_policy='drop_rows' or 'impute_mean'"
        % (len(first), shown, ", ..." if len(first) > SHOWN else "",
           columns[plan.features[j]], _first_piece(summaries, lambda s: s.nonfinite_x[j])))


def _check_scale(size, role, name):
    """A label or weight of a magnitude whose squares leave float64 is refused."""
    low, high = SCALE_RANGE["float64"]
    if size > high or 0 < size < low:
        raise BadValuesError(
            "%s column %r has values of magnitude %.3g, outside [%.0e, %.0e]: its squares "
            "%s float64; rescale it (e.g. divide it by a power of ten)"
            % (role, name, size, low, high, "overflow" if size > high else "underflow in"))


def _check_missing(summaries, role, column, count):
    """A missing value (counted per block by ``count``) in a weight or offset column:
    never imputed, so an error under ``nan_policy="error"``."""
    bad = sum(count(s) for s in summaries)
    if bad:
        raise BadValuesError("%s column %r has %d missing (null, NaN or inf) values, first "
                             "in %s" % (role, column, bad, _first_piece(summaries, count)))


def _check_weights(summaries, plan, nan_policy):
    if nan_policy == "error":
        _check_missing(summaries, "weight", plan.weight, lambda s: s.nonfinite_s)
    neg = sum(s.negative_s for s in summaries)
    if neg:
        raise BadValuesError("weight column %r has %d negative values, first in %s; weights "
                             "must be >= 0" % (plan.weight, neg, _first_piece(
                                 summaries, lambda s: s.negative_s)))


def _check_offsets(summaries, plan, nan_policy):
    if nan_policy == "error":
        _check_missing(summaries, "offset", plan.offset, lambda s: s.nonfinite_o)
    size = max(s.absmax_o for s in summaries)
    if size > MAX_ABS_OFFSET:
        raise BadValuesError(
            "offset column %r has values of magnitude %.3g, first in %s; an offset is added "
            "to the log of the mean, so e^offset leaves float64 beyond %g: give the log of "
            "the exposure, not the exposure" % (plan.offset, size, _first_piece(
                summaries, lambda s: s.absmax_o > MAX_ABS_OFFSET), MAX_ABS_OFFSET))


def _check_labels(summaries, plan, loss):
    """The labels of every block as the loss accepts them, in the first block at fault
    (:meth:`~elasticnet_dist.losses.Loss.table_label_problem`)."""
    problem = get_loss(loss).table_label_problem(summaries)
    if problem is not None:
        raise BadValuesError("label column %r %s" % (plan.label, problem))
