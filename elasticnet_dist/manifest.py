"""The selected-feature manifest: build it, write it atomically, read it, check it.

A manifest is one JSON document (``manifest.json``) that validates against
``schemas/manifest.schema.json``. It is the contract with downstream jobs:
``selected`` says which features carry weight and how much, ``dropped`` why
every other input column is absent, ``reduced_schema`` which columns to load
(selected features in input order, then the label, the weight, the offset and the keys)
with their Arrow types. Everything else is provenance.

Reproducibility: a manifest holds no wall-clock value other than
``created_at`` and the seconds in ``solver.timings``, and no value that
depends on scheduling (the engines merge partial sums in a fixed order), so a
rerun on the same input and configuration gives the same document apart from
those.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Optional

import numpy as np

from .errors import ColumnTypeError, ManifestError, MissingColumnError
from .io.categorical import level_feature, numeric_features
from .losses import get_loss
from .outputs import write_atomic  # noqa: F401  (re-exported: the manifest's writer)
from .redaction import scrub

SCHEMA_VERSION = "1.6"
SCHEMA_RESOURCE = "schemas/manifest.schema.json"
MANIFEST_NAME = "manifest.json"
#: Selected features whose path the manifest keeps (the largest; the figure names 10).
PATH_FEATURES = 100
#: Keys whose values change between identical runs (wall clock, the run's id).
VOLATILE = ("created_at", "run_id", ("solver", "timings"))


def manifest_schema() -> dict:
    """The JSON Schema shipped with the package."""
    text = resources.files("elasticnet_dist").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)


def check_manifest(document: dict, where="the manifest"):
    """Raise :class:`ManifestError` naming the first place ``document`` breaks the
    schema, or a ``dropped``/``selected``/``reduced_schema`` inconsistency."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        at = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ManifestError("%s does not match the manifest schema at %s: %s%s"
                            % (where, at[:200], _shorten(err.message, 300),
                               " (and %d more problems)" % (len(errors) - 1)
                               if len(errors) > 1 else ""))
    selected = [f["name"] for f in document["selected"]]
    dropped = [f["name"] for f in document["dropped"]]
    twice = sorted(n for n, k in Counter(selected + dropped).items() if k > 1)
    if twice:
        raise ManifestError("%s lists column %r more than once in selected/dropped"
                            % (where, twice[0]))
    features = [c["name"] for c in document["reduced_schema"] if c["role"] == "feature"]
    vectors = [c for c in document["reduced_schema"] if c["role"] == "vector"]
    if vectors:  # features read from a vector column: its slots are the selected ones
        slots = [f.get("slot") for f in document["selected"]]
        if features or len(vectors) > 1 or sorted(slots, key=lambda j: (j is None, j)) \
                != vectors[0].get("slots", []):
            raise ManifestError("%s: the slots of reduced_schema's vector column differ from "
                                "selected" % where)
    elif sorted(features) != sorted(selected):
        raise ManifestError("%s: the features of reduced_schema differ from selected" % where)
    roles = [c["name"] for c in document["reduced_schema"]]
    if len(set(roles)) != len(roles):
        raise ManifestError("%s lists column %r more than once in reduced_schema"
                            % (where, sorted(n for n, k in Counter(roles).items() if k > 1)[0]))
    _check_grid(document, where)


def _check_grid(document, where):
    """A cross-validated manifest's grid must be rectangular per l1_ratio and hold the
    chosen l1_ratio; its path must have one coefficient per alpha reached."""
    selection = document["selection"]
    if selection.get("method") != "cross_validation":
        return
    grid = selection.get("grid") or []
    for entry in grid:
        lengths = {key: len(entry[key]) for key in ("alphas", "mean", "se", "n_features")
                   if isinstance(entry.get(key), list)}
        if len(set(lengths.values())) > 1:
            raise ManifestError("%s: selection.grid for l1_ratio %r has arrays of different "
                                "lengths (%s)" % (where, entry.get("l1_ratio"), ", ".join(
                                    "%s %d" % kv for kv in lengths.items())))
    chosen = document["penalty"]["l1_ratio"]
    ratios = [entry.get("l1_ratio") for entry in grid]
    if grid and chosen not in ratios:
        raise ManifestError("%s: the chosen penalty.l1_ratio %r is not in selection.grid "
                            "(l1_ratios %s)" % (where, chosen, ratios[:10]))
    path = selection.get("path")
    if isinstance(path, dict) and isinstance(path.get("alphas"), list):
        for feature in path.get("features", []):
            values = feature.get("coefficients_standardized")
            if isinstance(values, list) and len(values) != len(path["alphas"]):
                raise ManifestError("%s: selection.path of %r has %d coefficients for %d "
                                    "alphas" % (where, feature.get("name"), len(values),
                                                len(path["alphas"])))


def build_manifest(est, config: dict, *, engine_address=None, run_id=None) -> dict:
    """The manifest of a fitted :class:`~elasticnet_dist.ElasticNet` or
    :class:`~elasticnet_dist.ElasticNetCV` (fitted on a table) and the
    resolved (and redacted) configuration that produced it. ``run_id`` (a new
    one by default) is written into the report too, so the two can be matched."""
    from . import __version__

    report = est.fit_report_
    cv = hasattr(est, "cv_results_")
    source = dict(report["source"])
    types = source.pop("column_types")
    source["uri"] = scrub(source["uri"])  # no credentials in a URI written down
    if "uri_absolute" in source:
        source["uri_absolute"] = scrub(source["uri_absolute"])
    source["files"] = [{**f, "path": scrub(f["path"])} for f in source.get("files", [])]
    if "stats_store" in source:
        source["stats_store"] = {**source["stats_store"],
                                 "uri": scrub(source["stats_store"]["uri"])}
    engine_address = scrub(engine_address)
    inp = config["input"]
    label, weight, keys = inp["label"], inp["weight"], list(inp["keys"])
    offset = inp.get("offset")
    names = list(est.feature_names_in_)
    vector = getattr(est, "vector_column_", None)
    slot = {} if vector is None else {n: j for j, n in enumerate(vector.slots)}
    vector_type = None if vector is None else types.pop(vector.name)
    types.update((n, "double") for n in slot)  # a vector's slots: features of its values
    coef = np.asarray(est.coef_, dtype=np.float64)
    coef_std = np.asarray(est.coef_standardized_, dtype=np.float64)
    per_class = coef.ndim == 2  # the multinomial loss: C x p, a feature's norm ranks it
    if per_class:
        class_coef, class_coef_std = coef, coef_std
        coef, coef_std = np.linalg.norm(coef, axis=0), np.linalg.norm(coef_std, axis=0)

    stability = getattr(est, "stability_", None)
    support = np.asarray(est.get_support()) if stability is not None else coef != 0
    features = feature_entries(names, getattr(est, "categorical_columns_", ()))
    selected = []
    for entry in features:
        j = entry.positions
        if not support[j].any():
            continue
        item = {"name": entry.name, "coefficient": entry.value(coef),
                "coefficient_standardized": entry.value(coef_std)}
        if entry.levels is not None:
            item.update(kind="categorical", levels=list(entry.levels),
                        coefficients=coef[j].tolist(),
                        coefficients_standardized=coef_std[j].tolist())
        if per_class:  # a categorical column's: for each class, each level's
            at = j if entry.levels is not None else j[0]
            item.update(class_coefficients=class_coef[:, at].tolist(),
                        class_coefficients_standardized=class_coef_std[:, at].tolist())
        if stability is not None:
            item["stability"] = float(stability[j].max())
        if entry.name in slot:
            item["slot"] = slot[entry.name]
        selected.append(item)
    selected.sort(key=lambda f: -abs(f["coefficient_standardized"]))
    for rank, item in enumerate(selected, start=1):
        item["rank"] = rank
    reasons = dict(est.dropped_features_)
    if inp["fold_column"]:
        reasons[inp["fold_column"]] = "fold_column"
    for entry in features:
        j = entry.positions
        if not coef[j].any():
            reasons[entry.name] = ("constant" if est.constant_features_[j].all()
                                   else "zero_coefficient")
        elif not support[j].any():
            reasons[entry.name] = "unstable"
    details = getattr(est, "dropped_details_", {})
    passthrough = {label, weight, offset, *keys} - {None}
    dropped = [{"name": n, "reason": reasons[n], **({"slot": slot[n]} if n in slot else {}),
                **details.get(n, {})}
               for n in types if n in reasons and n not in passthrough]
    if stability is not None:  # dropped features some half-samples chose
        frequency = {entry.name: float(stability[entry.positions].max()) for entry in features}
        for entry in dropped:
            if frequency.get(entry["name"], 0.0) > 0:
                entry["stability"] = frequency[entry["name"]]
    chosen_names = {f["name"] for f in selected}
    levels = {f["name"]: f["levels"] for f in selected if "levels" in f}
    if vector is None:
        reduced = [{"name": n, "type": types[n], "role": "feature",
                    **({"kind": "categorical", "levels": levels[n]} if n in levels else {})}
                   for n in types if n in chosen_names]
    else:
        reduced = [{"name": vector.name, "type": vector_type, "role": "vector",
                    "slots": sorted(slot[n] for n in chosen_names)}]
    reduced += [{"name": n, "type": types[n], "role": role}
                for n, role in [(label, "label"), (weight, "weight"), (offset, "offset")]
                + [(k, "key") for k in keys] if n]
    factors = est.penalty_factor or {}
    if not isinstance(factors, dict):
        factors = dict(zip(names, np.asarray(factors, dtype=float).tolist(), strict=True))
    target = {"name": label, "loss": est.loss, "weight": weight, "keys": keys}
    if offset is not None:
        target["offset"] = offset
    classes = est.classes_ if per_class else get_loss(est.loss).classes
    if classes is not None:
        target["classes"] = np.asarray(classes).tolist()
    document = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or uuid.uuid4().hex,
        "created_at": _now(),
        "tool": {"name": "elasticnet_dist", "version": __version__},
        "config": config,
        "input": source,
        "target": target,
        "penalty": {"alpha": float(est.alpha_ if cv else est.alpha_native_),
                    "l1_ratio": float(est.l1_ratio_ if cv else est.l1_ratio_native_),
                    "penalty_factors": {n: float(f) for n, f in factors.items() if f != 1},
                    "standardize": bool(est.standardize),
                    "fit_intercept": bool(est.fit_intercept)},
        "selection": _selection(est, config),
        "intercept": np.asarray(est.intercept_).tolist() if per_class else float(est.intercept_),
        "selected": selected,
        "dropped": dropped,
        "reduced_schema": reduced,
        "solver": _solver(est, report),
        "engine": {"name": report["engine"], "address": engine_address,
                   "workers": int(report["workers"]), "partitions": int(report["partitions"]),
                   "bytes_cached": int(report.get("bytes_cached", 0))},
    }
    if stability is not None:
        document["stability"] = {"method": "complementary_pairs", **est.stability_info_}
    return _json_ready(document)


@dataclass(frozen=True)
class FeatureEntry:
    """One entry of the manifest's features: a numeric feature (one position), or a
    categorical column and the positions of its levels' features."""

    name: str
    positions: np.ndarray
    levels: Optional[tuple] = None

    def value(self, coef):
        """The entry's coefficient: a numeric feature's own, a categorical column's
        Euclidean norm over its levels (what its group penalty weighs)."""
        if self.levels is None:
            return float(coef[self.positions[0]])
        return float(np.linalg.norm(coef[self.positions]))


def feature_entries(names, categorical=()):
    """The manifest's feature entries for the features ``names`` (a categorical
    column's level features end them, in the order of ``categorical``)."""
    numeric = numeric_features(names, categorical)
    out = [FeatureEntry(n, np.array([j])) for j, n in enumerate(numeric)]
    start = len(numeric)
    for column in categorical:
        stop = start + len(column.levels)
        out.append(FeatureEntry(column.name, np.arange(start, stop), tuple(column.levels)))
        start = stop
    return out


def _selection(est, config):
    if not hasattr(est, "cv_results_"):  # a fixed penalty
        return {"method": "fixed"}
    search, inp = config["search"], config["input"]
    metric = est.selection_["metric"]
    results = est.cv_results_
    l1 = np.atleast_1d(est.l1_ratio)
    alphas = np.atleast_2d(est.alphas_)
    mean = np.atleast_2d(results["mean_" + metric])
    se = np.atleast_2d(results["se_" + metric])
    n_features = np.atleast_2d(results["n_features"])
    grid = [{"l1_ratio": float(l1[i]), "alphas": alphas[i].tolist(), "mean": mean[i].tolist(),
             "se": se[i].tolist(),
             "n_features": [int(k) if k >= 0 else None for k in n_features[i]],
             "stopped_early": est.early_stopped_[i]}
            for i in range(len(l1))]
    assignment = ("column" if inp["fold_column"] else "keys" if inp["keys"] else "position")
    li = int(np.flatnonzero(np.atleast_1d(est.l1_ratio) == est.l1_ratio_)[0])
    ai = int(np.argmin(np.abs(alphas[li] - est.alpha_)))
    bl, ba = est.selection_.get("best", (li, ai))
    scores = {"chosen": {"mean": mean[li, ai], "se": se[li, ai]},
              "best": {"l1_ratio": float(l1[bl]), "alpha": float(alphas[bl, ba]),
                       "mean": mean[bl, ba], "se": se[bl, ba]}}
    return {"method": "cross_validation", "rule": est.selection_["rule"], "metric": metric,
            "scores": scores, "at_grid_edge": est.selection_.get("at_grid_edge"),
            "threshold": est.selection_["threshold"], "max_features": search["max_features"],
            "folds": int(search["cv"]), "fold_assignment": assignment,
            "stratified": bool(est.fit_report_.get("stratified_folds", False)),
            "fold_seed": int(search["fold_seed"]),
            "fold_rows": [int(k) for k in est.fold_rows_], "route": est.route_, "grid": grid,
            "path": _chosen_path(est),
            **_warm_start(est, search)}


def _warm_start(est, search):
    """The ``warm_start`` entry of a search started from a previous manifest."""
    info = getattr(est, "warm_start_info_", None)
    if info is None:
        return {}
    return {"warm_start": {**info, "baseline": scrub(search["warm_start"] or "")}}


def chosen_grid_point(document: dict):
    """``(grid entry, alpha index)`` of the chosen penalty in a cross-validated
    manifest's ``selection.grid`` (the alpha nearest the chosen one on the chosen
    l1_ratio's grid), or None for a fixed penalty."""
    selection, penalty = document["selection"], document["penalty"]
    if selection["method"] != "cross_validation":
        return None
    for entry in selection["grid"]:
        if entry["l1_ratio"] == penalty["l1_ratio"]:
            alphas = entry["alphas"]
            return entry, min(range(len(alphas)), key=lambda i: abs(alphas[i] - penalty["alpha"]))
    return None


def _chosen_path(est):
    """The selected features' standardized coefficients along the full-data path of
    the chosen l1_ratio, over the alphas that path reached (glmnet's stops may end
    it early); the multinomial loss's, their norms over the classes. Only the
    PATH_FEATURES largest selected features: the path of every feature would grow
    the manifest by ``p x n_alphas`` numbers (a selection of 499 features made
    manifests of 800 KB)."""
    l1 = np.atleast_1d(est.l1_ratio)
    li = int(np.flatnonzero(l1 == est.l1_ratio_)[0])
    alphas = np.atleast_2d(est.alphas_)[li]
    reached = np.atleast_2d(est.n_features_path_)[li] >= 0
    path, coef, coef_std = est.coef_standardized_path_, est.coef_, est.coef_standardized_
    if np.ndim(coef) == 2:  # the multinomial loss: each feature's norm over the classes
        path = np.linalg.norm(path, axis=-3)
        coef, coef_std = np.linalg.norm(coef, axis=0), np.linalg.norm(coef_std, axis=0)
    path = path if path.ndim == 3 else path[None]
    names = est.feature_names_in_
    chosen = np.flatnonzero(coef)
    order = chosen[np.argsort(-np.abs(coef_std[chosen]), kind="stable")]
    return {"l1_ratio": float(l1[li]), "alphas": alphas[reached].tolist(),
            "features_omitted": int(max(0, order.size - PATH_FEATURES)),
            "features": [{"name": names[j],
                          "coefficients_standardized": path[li, j, reached].tolist()}
                         for j in order[:PATH_FEATURES]]}


def _solver(est, report):
    timings = {k: float(v) for k, v in report["timings"].items()}
    timings["engine_start"] = float(report.get("engine_start_s", 0.0))
    iterations = getattr(est, "n_iter_", None)
    return {"name": "cross_validation/" + est.route_ if hasattr(est, "route_") else est.solver_,
            "iterations": None if iterations is None else int(iterations),
            "data_passes": int(est.n_passes_), "duality_gap": float(est.dual_gap_),
            "tolerance": float(est.tol_),
            "converged": bool(est.converged_), "timings": timings}


def _json_ready(obj):
    """NumPy scalars to Python, NaN/inf to null (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def without_volatile(document: dict) -> dict:
    """The manifest without the values that change between identical runs."""
    out = json.loads(json.dumps(document))
    out.pop("created_at", None)
    out.pop("run_id", None)
    out.get("solver", {}).pop("timings", None)
    return out


# ---- downstream ----------------------------------------------------------------------

@dataclass(frozen=True)
class Manifest:
    """A manifest read back (see :func:`read_manifest`).

    ``selected``: names of the selected features, by rank; ``coefficients``:
    name -> coefficient on the original scale; ``intercept``;
    ``reduced_schema``: ``[(name, arrow type string), ...]``; ``columns``: the
    names of ``reduced_schema`` in order; ``document``: the whole JSON.
    """

    document: dict
    path: str = ""

    @property
    def selected(self):
        return [f["name"] for f in self.document["selected"]]

    @property
    def coefficients(self):
        """Feature name -> coefficient; a categorical column's by level feature
        (``<column>=<level>``), as the estimators name them."""
        out = {}
        for f in self.document["selected"]:
            if f.get("kind") == "categorical":
                out.update((level_feature(f["name"], level), c)
                           for level, c in zip(f["levels"], f["coefficients"], strict=True))
            else:
                out[f["name"]] = f["coefficient"]
        return out

    @property
    def class_coefficients(self):
        """Feature name -> its coefficient for each class (loss multinomial; in the
        order of ``target.classes``; a categorical column's by level feature, as
        :attr:`coefficients`); empty for other losses."""
        out = {}
        for f in self.document["selected"]:
            if "class_coefficients" not in f:
                continue
            if f.get("kind") == "categorical":
                by_level = zip(*f["class_coefficients"], strict=True)  # level by level
                out.update((level_feature(f["name"], level), list(c))
                           for level, c in zip(f["levels"], by_level, strict=True))
            else:
                out[f["name"]] = f["class_coefficients"]
        return out

    @property
    def categorical(self):
        """Categorical columns of the reduced schema: name -> their levels."""
        return {c["name"]: c["levels"] for c in self.document["reduced_schema"]
                if c.get("kind") == "categorical"}

    @property
    def intercept(self):
        return self.document["intercept"]

    @property
    def reduced_schema(self):
        return [(c["name"], c["type"]) for c in self.document["reduced_schema"]]

    @property
    def columns(self):
        return [c["name"] for c in self.document["reduced_schema"]]

    @property
    def vector_slots(self):
        """Columns of vectors in the reduced schema: name -> the selected slots."""
        return {c["name"]: c["slots"] for c in self.document["reduced_schema"]
                if c["role"] == "vector"}

    @property
    def label(self):
        return self.document["target"]["name"]

    def require_columns(self, present, where):
        """Raise :class:`~elasticnet_dist.errors.MissingColumnError` naming the
        reduced-schema columns that are not in ``present`` (names) of ``where``."""
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise MissingColumnError("%s lacks %d column(s) of the reduced schema of %s: %s"
                                     % (where, len(missing), self.path or "the manifest",
                                        missing[:10]))

    def project(self, frame):
        """``frame`` (pandas, Dask or Spark DataFrame, or Arrow table) with only the
        reduced-schema columns, in the manifest's order. A missing column is a
        :class:`~elasticnet_dist.errors.MissingColumnError` naming it."""
        self.require_columns(_column_names(frame), "the table")
        module = type(frame).__module__
        if module.startswith("pyspark"):
            from .io.columns import spark_columns

            return frame.select(*spark_columns(self.columns))
        if module.startswith("pyarrow"):
            return frame.select(self.columns)
        return frame[self.columns]


def _column_names(frame):
    if type(frame).__module__.startswith("pyarrow"):
        return set(frame.schema.names)
    return set(map(str, frame.columns))


def read_manifest(path, storage_options=None) -> Manifest:
    """Read and check a manifest file (local path or fsspec URL, opened with
    ``storage_options``)."""
    import fsspec

    where = os.fspath(path)
    try:
        with fsspec.open(where, "r", encoding="utf-8", **(storage_options or {})) as f:
            document = json.load(f, parse_constant=_no_constant)
    except RecursionError:
        raise ManifestError("cannot read the manifest %s: its JSON is nested too deeply"
                            % where) from None
    except (OSError, ValueError) as exc:
        raise ManifestError("cannot read the manifest %s: %s" % (where, _shorten(exc))) \
            from None
    if not isinstance(document, dict):
        raise ManifestError("%s is not a manifest (a JSON object)" % where)
    try:
        check_manifest(document, where)
    except RecursionError:
        raise ManifestError("%s is not a manifest: nested too deeply" % where) from None
    return Manifest(document, where)


def _no_constant(name):
    """JSON has no NaN or Infinity (Python's json reads them unless told not to)."""
    raise ValueError("it holds %s, which is not JSON (a manifest never holds NaN or "
                     "infinite numbers)" % name)


def _shorten(exc, limit=300):
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "... (%d characters)" % len(text)


def check_table_matches(manifest: Manifest, schema, where: str):
    """Every reduced-schema column must be in ``schema`` (an Arrow schema) with the
    recorded type; raises :class:`MissingColumnError` or :class:`ColumnTypeError`
    naming the first columns at fault."""
    have = {name: str(t) for name, t in zip(schema.names, schema.types, strict=True)}
    manifest.require_columns(have, where)
    changed = [(n, t, have[n]) for n, t in manifest.reduced_schema if have[n] != t]
    if changed:
        raise ColumnTypeError("%s: %d column(s) changed type since %s: %s"
                              % (where, len(changed), manifest.path,
                                 ", ".join("%r is %s, the manifest says %s" % (n, now, was)
                                           for n, was, now in changed[:5])))
