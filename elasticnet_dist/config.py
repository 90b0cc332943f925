"""The configuration of the ``select`` stage: defaults, YAML files, flags.

A configuration is a two-level mapping ``section -> key -> value``. Every key
is declared once in :data:`SPEC` with its default, the values it allows and a
line of documentation (``conf/default.yaml`` is the same table as YAML, and a
test keeps the two equal). :func:`resolve` layers, last wins:

1. the defaults of :data:`SPEC`;
2. each ``--config`` file, in order (read with ``yaml.safe_load``);
3. the command-line flags.

Every layer is validated as it is applied: an unknown section or key, or a
value of the wrong kind, is a :class:`ConfigError` that names the file, the
key and what is allowed.
"""
from __future__ import annotations

import copy
import difflib
import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import params
from .engines import ENGINES
from .errors import ConfigError
from .losses import get_loss


@dataclass(frozen=True)
class Option:
    """One configuration key: its default, a check, what it allows (in words)."""

    default: Any
    check: Callable[[Any], bool]
    allowed: str
    doc: str
    values: tuple = ()   # the allowed values of a choice (the CLI's choices)


def _choice(*values, nullable=False):
    rule = params.choice(*values, nullable=nullable)
    return rule.check, rule.allowed, rule.values


def _number(*args, **kwargs):
    rule = params.number(*args, **kwargs)
    return rule.check, rule.allowed


def _string(nullable=True):
    return (lambda x: (x is None and nullable) or (isinstance(x, str) and x != ""),
            "a non-empty string" + (" or null" if nullable else ""))


def _strings(nullable=False):
    def check(x):
        return (x is None and nullable) or (isinstance(x, list)
                                            and all(isinstance(s, str) and s for s in x))
    return check, "a list of strings" + (" or null" if nullable else "")


def _mapping(values_check, values_text):
    def check(x):
        return isinstance(x, dict) and all(isinstance(k, str) and values_check(v)
                                           for k, v in x.items())
    return check, "a mapping of names to " + values_text


def _nullable_mapping(values_check, values_text):
    check, allowed = _mapping(values_check, values_text)
    return (lambda x: x is None or check(x)), allowed + " or null"


def _boolean():
    return (lambda x: isinstance(x, bool)), "true or false"


def _param(name):
    """The option of parameter ``name`` (:mod:`elasticnet_dist.params`): its rule, the
    stage's default and its documentation with the flag."""
    param = params.PARAMS[name]
    flag = " (%s)" % param.flag if param.flag else ""
    return Option(param.stage, param.rule.check, param.rule.allowed, param.doc + flag,
                  param.rule.values)


def _params_of(section):
    """Every parameter whose configuration key is in ``section``, by key."""
    return {p.config.split(".")[1]: _param(p.name) for p in params.PARAMS.values()
            if p.config and p.config.split(".")[0] == section}


def _opt(default, rule, doc):
    check, allowed, *values = rule
    return Option(default, check, allowed, doc, *values)


def _is_scalar(v):
    return isinstance(v, (str, int, float, bool))


#: fsspec options: scalars, or one level of mappings of scalars (s3fs's client_kwargs,
#: config_kwargs).
_scalar = (lambda v: _is_scalar(v) or (isinstance(v, dict) and all(
    isinstance(k, str) and _is_scalar(x) for k, x in v.items())),
    "strings, numbers, booleans or mappings of them (client_kwargs)")
_factor = (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0,
           "numbers >= 0")

SPEC = {
    "input": {
        "path": _opt(None, _string(), "Parquet file, directory, glob or fsspec URL (--input)"),
        "label": _opt(None, _string(), "the label column (--label)"),
        "features": _opt(None, _strings(nullable=True),
                         "feature names and glob patterns; null = every numeric column "
                         "other than the label, weight, offset and keys (--features)"),
        "exclude": _opt([], _strings(), "names and glob patterns left out (--exclude)"),
        "vector": _opt(None, _string(), "a column of Spark ML vectors (sparse or dense) whose "
                                        "slots are the features (named by the ML attributes "
                                        "Spark wrote, else <column>_<i>) instead of numeric "
                                        "columns; features and exclude then match slot names "
                                        "(--vector)"),
        "max_levels": _opt(params.DEFAULT_MAX_LEVELS, _number(0, params.MAX_LEVELS, integer=True),
                           "string columns with at most this many distinct values are "
                           "categorical features: one 0/1 feature per level, selected or "
                           "dropped whole (a group penalty); columns with more are dropped "
                           "as too_many_levels; 0 drops every string column as non_numeric "
                           "(--max-levels)"),
        "weight": _opt(None, _string(), "a column of row weights >= 0 (--weight)"),
        "offset": _opt(None, _string(), "a column added to the linear predictor, the log of "
                                        "each row's exposure (loss poisson; --offset)"),
        "keys": _opt([], _strings(),
                     "pass-through key columns: kept in the reduced schema, never features, "
                     "and hashed to assign the CV folds (--keys)"),
        "fold_column": _opt(None, _string(), "a column of fold numbers 0..cv-1 instead of "
                                             "hashed folds"),
        "storage_options": _opt({}, _mapping(*_scalar),
                                "fsspec options for remote paths (never written to the "
                                "manifest)"),
        **_params_of("input"),
    },
    "model": {
        **_params_of("model"),
        "penalty_factor": _opt({}, _mapping(*_factor),
                               "per-feature penalty factors; 0 = never penalised; "
                               "features not named get 1"),
    },
    "penalty": _params_of("penalty"),
    "search": {
        **_params_of("search"),
        "warm_start": _opt(None, _string(),
                           "a previous run's manifest (path or URL, same loss): search only "
                           "the alphas from 15 above its penalty to 15 below its best score, "
                           "every path starting from its coefficients (fewer passes, less "
                           "driver work; the whole grid if the choice falls on the window's "
                           "edge, or if there is no manifest there yet) (--warm-start)"),
    },
    "engine": {
        "name": _opt("auto", _choice("auto", *ENGINES),
                     "where the passes run; dask without a scheduler starts an embedded "
                     "LocalCluster; auto: dask with engine.scheduler, spark with "
                     "engine.master, else the local engine for a table under 256 MB "
                     "(one piece: workers would only add their start-up) and an embedded "
                     "Dask cluster above (--engine)"),
        "scheduler": _opt(None, _string(), "Dask scheduler address, tcp://host:8786 "
                                           "(--scheduler)"),
        "master": _opt(None, _string(), "Spark master URL, spark://host:7077, yarn, "
                                        "local[4] (--master)"),
        "dask_workers": _opt(None, _number(1, 1024, integer=True, nullable=True),
                             "workers of the embedded LocalCluster; null = one per core"),
        "connect_timeout": _opt(30, _number(0, strict_low=True),
                                "seconds to wait for a Dask scheduler"),
        **_params_of("engine"),
        "spark_conf": _opt({}, _mapping(*_scalar),
                           "Spark settings for a session started here "
                           "(spark.executor.memory, ...)"),
    },
    "output": {
        "dir": _opt(None, _string(), "where manifest.json and the report are written: a "
                                     "local folder or an fsspec URL such as s3://bucket/"
                                     "prefix (--output)"),
        "storage_options": _opt(None, _nullable_mapping(*_scalar),
                                "fsspec options for an output.dir or drift.baseline URL; "
                                "null = input.storage_options (never written to the "
                                "manifest)"),
        "on_not_converged": _opt("warn", _choice("warn", "fail"),
                                 "warn: write the manifest with converged=false and exit 0; "
                                 "fail: write nothing and exit 4"),
        "report": _opt(True, _boolean(),
                       "write report.html and PNG figures beside the manifest (needs the "
                       "plot extra; skipped with a log line without it) (--no-report)"),
        "mlflow": _opt(None, _string(),
                       "log the run to MLflow at this tracking URI; 'local' = a file store "
                       "in <dir>/mlruns (--mlflow; needs the mlflow extra)"),
        "mlflow_experiment": _opt("elasticnet_dist", _string(nullable=False),
                                  "MLflow experiment of the run"),
        "checkpoint_dir": _opt(None, _string(),
                               "save progress here (data passes, path points), a folder "
                               "or a store URL (with input.storage_options); a rerun "
                               "after a crash resumes from it; cleared once the manifest "
                               "is written (--checkpoint-dir)"),
        "stats_store": _opt(None, _string(),
                            "keep every Parquet piece's statistics here between runs (a "
                            "folder or store URL, with input.storage_options): a rerun reads "
                            "only the files it has not seen, bit for bit the same sums; about "
                            "K p^2 / 2 float64 per piece on the one-pass route; entries of "
                            "files gone from the table are removed after a run "
                            "(--stats-store)"),
    },
    "drift": {
        "baseline": _opt(None, _string(),
                         "a previous run's manifest (path or URL): the new manifest gets a "
                         "drift section against it (--baseline)"),
        "max_churn": _opt(None, _number(0, 1, nullable=True),
                          "with a baseline: exit 7 (after writing the manifest) when the "
                          "Jaccard distance of the selected sets exceeds this (--max-churn)"),
        "coef_change": _opt(0.5, _number(0, strict_low=True),
                            "report kept features whose standardized coefficient moved by "
                            "more than this fraction of its baseline size (--coef-change)"),
    },
    "logging": {
        "level": _opt("info", _choice("debug", "info", "warning", "error"), "(--log-level)"),
        "format": _opt("text", _choice("text", "json"), "text or JSON lines (--log-format)"),
        "progress": _opt("auto", _choice("auto", "always", "never"),
                         "progress of passes and path points on stderr; auto = on a "
                         "terminal only"),
    },
}


def defaults() -> dict:
    """A fresh copy of every default, as a nested dict."""
    return {section: {key: copy.deepcopy(opt.default) for key, opt in keys.items()}
            for section, keys in SPEC.items()}


def merge(config: dict, layer: Optional[dict], where: str) -> dict:
    """``config`` updated by ``layer`` (validated key by key); a new dict."""
    out = copy.deepcopy(config)
    if layer is None:
        return out
    if not isinstance(layer, dict):
        raise ConfigError("%s must be a mapping of sections (%s), got %s"
                          % (where, ", ".join(SPEC), type(layer).__name__))
    for section, values in layer.items():
        if section not in SPEC:
            raise ConfigError("unknown section %s in %s; allowed sections: %s%s"
                              % (shown(section), where, ", ".join(SPEC), _hint(section, SPEC)))
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError("section %r in %s must be a mapping of keys (%s)"
                              % (section, where, ", ".join(SPEC[section])))
        for key, value in values.items():
            spec = SPEC[section].get(key)
            if spec is None:
                raise ConfigError("unknown key %s.%s in %s; allowed keys of %r: %s%s"
                                  % (section, shown(key).strip("'"), where, section,
                                     ", ".join(SPEC[section]), _hint(key, SPEC[section])))
            if isinstance(value, tuple):
                value = list(value)
            if not spec.check(value):
                from .redaction import SECRET_SECTIONS, redact

                shown_value = (shown(redact(value, secret=True))
                               if (section, key) in SECRET_SECTIONS else shown(value))
                raise ConfigError("bad value %s for %s.%s in %s; allowed: %s"
                                  % (shown_value, section, key, where, spec.allowed))
            out[section][key] = copy.deepcopy(value)
    return out


#: A configuration file larger than this is refused unread (a config is a few kB).
MAX_CONFIG_BYTES = 1 << 20


def load_file(path) -> dict:
    """The mapping in a YAML file (``yaml.safe_load``: no Python objects). A file
    that is not UTF-8 text, larger than :data:`MAX_CONFIG_BYTES` or nested
    beyond reason is a :class:`ConfigError` naming it."""
    import yaml

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError("cannot read the config file %s: %s" % (path, exc.strerror)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError("config file %s is larger than %d bytes; a configuration is a "
                          "small YAML file" % (path, MAX_CONFIG_BYTES))
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("config file %s is not UTF-8 text (byte %d): is it a YAML file?"
                          % (path, exc.start)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("config file %s is not valid YAML: %s"
                          % (path, shown(str(exc), 500).strip("'"))) from None
    except RecursionError:
        raise ConfigError("config file %s is nested too deeply" % path) from None
    return {} if data is None else data


def resolve(files=(), flags=None) -> dict:
    """Defaults, then each config file, then the flags; checked as a whole."""
    config = defaults()
    for path in files:
        config = merge(config, load_file(path), os.fspath(path))
    config = merge(config, flags, "the command-line flags")
    check_consistent(config)
    return config


def check_consistent(config: dict):
    """Rules between keys (each key alone is already valid)."""
    engine = config["engine"]
    if engine["name"] == "auto" and (engine["scheduler"] or engine["master"]):
        engine["name"] = "dask" if engine["scheduler"] else "spark"
    if engine["scheduler"] and engine["name"] != "dask":
        raise ConfigError("engine.scheduler (a Dask scheduler) is set but engine.name is %r; "
                          "use engine.name: dask or drop the scheduler" % engine["name"])
    if engine["master"] and engine["name"] != "spark":
        raise ConfigError("engine.master (a Spark master) is set but engine.name is %r; "
                          "use engine.name: spark or drop the master" % engine["name"])
    if config["drift"]["max_churn"] is not None and not config["drift"]["baseline"]:
        raise ConfigError("drift.max_churn (--max-churn) compares the new selection with a "
                          "baseline: give drift.baseline (--baseline OLD_MANIFEST)")
    inp = config["input"]
    from .io.columns import check_roles

    check_roles(label=inp["label"], weight=inp["weight"], offset=inp["offset"],
                keys=inp["keys"], fold_column=inp["fold_column"], features=inp["features"],
                names={"label": "input.label", "weight": "input.weight",
                       "offset": "input.offset", "keys": "input.keys",
                       "fold_column": "input.fold_column", "features": "input.features"})
    if inp["offset"] and not get_loss(config["model"]["loss"]).takes_offset:
        raise ConfigError("input.offset (%r) is the log of each row's exposure, for "
                          "model.loss poisson; model.loss is %r"
                          % (inp["offset"], config["model"]["loss"]))
    search = config["search"]
    search_only = (  # settings of the cross-validated search, which a fixed alpha skips
        (search["stability"] or search["min_stability"] is not None,
         "search.stability (--stability) measures the selection at the penalty "
         "cross-validation chooses"),
        (search["warm_start"], "search.warm_start (--warm-start) starts the search from a "
                               "previous run's penalty"),
        (inp["fold_column"], "input.fold_column is only used by cross-validation"))
    for used, what in search_only:
        if used and config["penalty"]["alpha"] is not None:
            raise ConfigError("%s, but penalty.alpha fixes it; drop one of them" % what)
    for key in ("stability", "stability_groups"):
        if search[key] % 2:
            raise ConfigError("search.%s must be even (complementary pairs of half-samples), "
                              "got %r" % (key, search[key]))
    if search["min_stability"] is not None and not search["stability"]:
        raise ConfigError("search.min_stability (--min-stability) keeps the features "
                          "selected often enough over half-samples: set search.stability "
                          "(--stability N, e.g. 50)")
    scoring = config["search"]["scoring"]
    allowed = get_loss(config["model"]["loss"]).metrics
    if scoring is not None and scoring not in allowed:
        raise ConfigError("search.scoring %r does not apply to the %s loss; allowed: %s"
                          % (scoring, config["model"]["loss"], " or ".join(allowed)))


def choices(dotted):
    """The allowed values of the choice key ``section.key`` (for the CLI's flags)."""
    section, key = dotted.split(".")
    return tuple(v for v in SPEC[section][key].values if v is not None)


def require(config: dict, *keys):
    """Keys (``"section.key"``) that a command needs and that have no default."""
    for dotted in keys:
        section, key = dotted.split(".")
        if config[section][key] is None:
            raise ConfigError("%s is required (flag --%s or key %s in a config file)"
                              % (dotted, _FLAG_OF.get(dotted, key), dotted))


_FLAG_OF = {"input.path": "input", "input.label": "label", "output.dir": "output"}


def redacted(config: dict) -> dict:
    """The configuration as it may be written down: every value of
    ``input.storage_options`` and of any secret-looking key replaced by ``"***"``,
    user information and secret query values stripped from every URI
    (:mod:`elasticnet_dist.redaction`)."""
    from .redaction import redact_config

    return redact_config(config)


def _hint(name, choices):
    if not isinstance(name, str) or len(name) > 100:
        return ""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return "; did you mean %r?" % close[0] if close else ""


def shown(value, limit=120) -> str:
    """``repr(value)`` cut to about ``limit`` characters, computed without ever
    building the whole text (a YAML alias bomb of 500 bytes expands to hundreds of
    MB): messages never echo unbounded values."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset = 3, 6, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = limit, limit, 40
    text = r.repr(value)
    return text if len(text) <= limit + 20 else text[:limit] + "..."
