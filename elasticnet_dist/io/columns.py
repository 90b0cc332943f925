"""Which columns of a table are the label, the weight, the offset, the keys and the features.

A :class:`ColumnPlan` is decided from the schema alone (no data read): every
column of the input ends in exactly one role, and every column that is not a
feature, the label, the weight or a key carries the reason it was left out
(``non_numeric``, ``excluded_by_config``; ``all_null`` is added after loading).
String columns are categorical features when ``max_levels`` allows (their levels
are read by :func:`with_levels`: ``too_many_levels`` otherwise).
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Optional

import pyarrow as pa

from ..errors import ColumnTypeError, ConfigError, MissingColumnError
from ..sparse import is_vector_type
from .categorical import CategoricalColumn, is_categorical_type, numeric_features

GLOB_CHARS = set("*?[")


def is_numeric_type(t: pa.DataType) -> bool:
    """Integer, floating, decimal or boolean Arrow types (what a feature may be)."""
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
            or pa.types.is_boolean(t))


@dataclass(frozen=True)
class ColumnPlan:
    """Roles of the columns of one table, in input order."""

    features: tuple
    label: str
    weight: Optional[str]
    keys: tuple
    types: dict = field(default_factory=dict)     # name -> Arrow type string
    dropped: dict = field(default_factory=dict)   # name -> reason
    offset: Optional[str] = None
    #: The vector column whose slots are the features (None: numeric columns are).
    vector: Optional[str] = None
    #: Categorical features (:class:`~.categorical.CategoricalColumn`), whose levels'
    #: one-hot columns end ``features``; before :func:`with_levels`, their names.
    categorical: tuple = ()
    #: Per dropped column, what the reason counted (``too_many_levels``: ``levels``).
    details: dict = field(default_factory=dict)

    @property
    def numeric(self):
        """The features read from numeric columns (those before the one-hot ones)."""
        return numeric_features(self.features, self.categorical)

    @property
    def source_columns(self):
        """Feature name -> the column it is read from (a level's: its categorical column)."""
        out = {name: name for name in self.numeric}
        for column in self.categorical:
            out.update((name, column.name) for name in column.features)
        return out

    @property
    def passthrough(self):
        """Label, weight, offset and keys: the columns that are never features."""
        return ((self.label,) + tuple(c for c in (self.weight, self.offset) if c)
                + self.keys)

    def without(self, names, reason):
        """The plan with ``names`` moved from the features to the dropped columns."""
        names = set(names)
        dropped = dict(self.dropped)
        dropped.update({n: reason for n in self.features if n in names})
        return replace(self, features=tuple(n for n in self.features if n not in names),
                       dropped=dropped)


def plan_columns(schema: pa.Schema, *, label, weight=None, keys=(), features=None,
                 exclude=(), where="the input", offset=None, vector=None, max_levels=0,
                 text_label=False):
    """Decide the roles of the columns of ``schema``.

    ``features``: None (every numeric column other than the label, weight,
    offset and keys) or a list of names and glob patterns (``*``, ``?``, ``[...]``);
    ``exclude``: names and patterns removed from those. With ``vector`` (a
    :class:`~elasticnet_dist.sparse.VectorColumn`) the features are that column's
    slots instead (``features`` and ``exclude`` then match slot names), and every
    other column that has no role is left out as ``excluded_by_config``. With
    ``max_levels`` > 0 string columns are categorical features (named in
    ``categorical`` until :func:`with_levels` reads their levels). Raises
    :class:`MissingColumnError` for a label, weight, offset, key or named feature
    that is absent (or a pattern that matches nothing), :class:`ColumnTypeError`
    for a non-numeric label (unless ``text_label``: a class label may be a string
    column too), weight or offset.
    """
    check_roles(label=label, weight=weight, offset=offset, keys=keys, features=features)
    names = list(schema.names)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ColumnTypeError("%s has duplicate column names %s" % (where, dup[:5]))
    keys = tuple(_as_list(keys, "keys"))
    _require(label, names, "label", where)
    for role, col in (("weight", weight), ("offset", offset)):
        if col is not None:
            _require(col, names, role, where)
    for k in keys:
        _require(k, names, "key", where)
    types = {n: str(schema.field(n).type) for n in names}
    for role, col in (("label", label), ("weight", weight), ("offset", offset)):
        if col is None or is_numeric_type(schema.field(col).type):
            continue
        if role == "label" and text_label and is_categorical_type(schema.field(col).type):
            continue
        raise ColumnTypeError("%s column %r in %s has type %s; it must be numeric "
                              "(or boolean%s)" % (role, col, where, types[col],
                                                  ", or strings for class labels"
                                                  if role == "label" and text_label else ""))
    reserved = {label, weight, offset, *keys}
    candidates = [n for n in names if n not in reserved]
    dropped = {}
    if vector is not None:
        require_vector_column(schema, vector.name, where)
        dropped = {n: "excluded_by_config" for n in candidates if n != vector.name}
        candidates = list(vector.slots)
        names = candidates + list(reserved)
        types = dict(types, **{n: "double" for n in candidates})
        schema = None
    wanted = (set(candidates) if features is None
              else _match(_as_list(features, "features"), candidates, names, where, reserved))
    excluded = _match(_as_list(exclude, "exclude"), candidates, names, where, reserved,
                      must_match=False)
    chosen, categorical = [], []
    for n in candidates:
        t = pa.float64() if schema is None else schema.field(n).type
        if n not in wanted or n in excluded:
            dropped[n] = "excluded_by_config"
        elif pa.types.is_null(t):
            dropped[n] = "all_null"
        elif max_levels > 0 and is_categorical_type(t):
            categorical.append(n)
        elif not is_numeric_type(t):
            dropped[n] = "non_numeric"
        else:
            chosen.append(n)
    return ColumnPlan(features=tuple(chosen), label=label, weight=weight, keys=keys,
                      types=types, dropped=dropped, offset=offset,
                      vector=None if vector is None else vector.name,
                      categorical=tuple(categorical))


def with_levels(plan: ColumnPlan, counts: dict, max_levels, where="the input"):
    """The plan with its categorical columns' levels (``counts``: name ->
    :class:`~.categorical.LevelCount`): those with 1 to ``max_levels`` levels become
    one-hot features after the numeric ones; more levels: ``too_many_levels`` (the
    count in ``details``); none (every value null): ``all_null``. A level's feature
    name that is already a column's is a :class:`ColumnTypeError`."""
    dropped, details = dict(plan.dropped), dict(plan.details)
    kept = []
    for name in plan.categorical:
        count = counts[name]
        if count.count == 0:
            dropped[name] = "all_null"
        elif count.count > max_levels:
            dropped[name] = "too_many_levels"
            details[name] = {"levels": count.count, **({} if count.exact else {"at_least": True})}
        else:
            kept.append(CategoricalColumn(name, count.levels))
    features = list(plan.features)
    taken = set(plan.types)
    for column in kept:
        clash = [f for f in column.features if f in taken]
        if clash:
            raise ColumnTypeError("%s: the level feature %r of categorical column %r is also a "
                                  "column's name; rename the column or exclude one of them"
                                  % (where, clash[0], column.name))
        features += column.features
    return replace(plan, features=tuple(features), dropped=dropped, details=details,
                   categorical=tuple(kept))


def require_vector_column(schema: pa.Schema, name, where):
    """The column ``name`` must be in ``schema`` and hold Spark ML vectors: a
    :class:`MissingColumnError` or a :class:`ColumnTypeError` naming it otherwise."""
    _require(name, list(schema.names), "vector", where)
    t = schema.field(name).type
    if not is_vector_type(t):
        raise ColumnTypeError("vector column %r in %s has type %s; it must be a Spark ML "
                              "vector (struct of type, size, indices, values)" % (name, where, t))


ROLE_OPTIONS = {"label": "label", "weight": "weight", "offset": "offset", "keys": "keys",
                "fold_column": "fold_column", "features": "features"}


def check_roles(*, label, weight=None, keys=(), fold_column=None, features=None,
                names=ROLE_OPTIONS, offset=None):
    """Each column has one role: the label, the weight, the offset, the keys, the fold
    column and the features named exactly (not by a pattern, which simply skips the
    others) must not share a column. A :class:`ConfigError` names the column and both
    options (``names``: role -> the option's name as the caller knows it)."""
    roles = [("label", label), ("weight", weight), ("offset", offset)]
    roles += [("keys", k) for k in _as_list(keys, "keys")]
    roles.append(("fold_column", fold_column))
    roles += [("features", f) for f in _as_list(features, "features")
              if isinstance(f, str) and not GLOB_CHARS & set(f)]
    seen = {}
    for role, column in roles:
        if not isinstance(column, str):
            continue
        if column in seen and not (role == seen[column] == "features"):
            raise ConfigError("column %r is given two roles, %s and %s; a column is the label, "
                              "the weight, the offset, a key, the fold column or a feature, "
                              "never two of them" % (column, names[seen[column]], names[role]))
        seen[column] = role


def _as_list(value, option):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise ValueError("%s must be a column name or a list of names and glob patterns, "
                         "got %r" % (option, value)) from None


def _require(col, names, role, where):
    if not isinstance(col, str):
        raise ValueError("the %s column must be given by name (a string), got %r" % (role, col))
    if col not in names:
        lower = {n.lower(): n for n in names}
        close = [lower[c] for c in difflib.get_close_matches(col.lower(), list(lower), n=3)]
        hint = "; did you mean %s?" % " or ".join(map(repr, close)) if close else ""
        raise MissingColumnError("%s column %r is not in %s (%d columns)%s"
                                 % (role, col, where, len(names), hint))


def _match(patterns, candidates, names, where, reserved, must_match=True):
    """Names in ``candidates`` matched by exact names or glob patterns."""
    out = set()
    for pat in patterns:
        if not isinstance(pat, str):
            raise ValueError("feature names and patterns must be strings, got %r" % (pat,))
        if pat in names and (pat in candidates or pat in reserved):
            if pat in candidates:  # an exact name wins over a pattern reading
                out.add(pat)
            continue
        if GLOB_CHARS & set(pat):
            hits = [n for n in candidates if fnmatch.fnmatchcase(n, pat)]
            if not hits and must_match:
                raise MissingColumnError("feature pattern %r matches no column of %s"
                                         % (pat, where))
            out.update(hits)
        elif must_match:
            _require(pat, names, "feature", where)
    return out


def spark_columns(names):
    """Spark column references for names taken literally (spaces, dots, backticks)."""
    from pyspark.sql import functions as F

    return [F.col("`%s`" % name.replace("`", "``")) for name in names]
