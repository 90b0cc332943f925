"""The ``elasticnet-dist`` command: a pipeline stage for schedulers.

argparse (standard library) keeps scheduler images free of extra CLI
dependencies, gives ``--help`` on every subcommand and exits 2 on a bad flag,
which is also our code for a bad configuration. Subcommands:

- ``select``: fit (the penalty by cross-validation unless ``--alpha``) and write
  ``<output>/manifest.json``;
- ``apply``: write a table projected onto a manifest's reduced schema;
- ``validate``: check a manifest (and optionally a table against it);
- ``report``: rebuild ``report.html`` and its figures from a manifest;
- ``demo``: generate a seeded sample table and run ``select`` on it.

Exit codes (:data:`EXIT_CODES`): 0 success, 1 internal error (a bug: please
report it with the ``--debug`` traceback), 2 bad configuration or flags, 3 bad
input data, 4 no convergence (with ``on_not_converged: fail``), 5 engine or
infrastructure failure, 6 invalid manifest. Expected errors print one line,
no traceback (``--debug`` adds it).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time

from . import config as cfg
from ._text import count
from .errors import (ConfigError, DriftExceededError, EngineError, InputError, ManifestError,
                     NonFiniteDataError, NotConvergedError, Terminated)

EXIT_OK, EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT = 0, 1, 2, 3
EXIT_NOT_CONVERGED, EXIT_ENGINE, EXIT_MANIFEST, EXIT_DRIFT = 4, 5, 6, 7
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug; rerun with --debug and report the traceback)",
    EXIT_CONFIG: "bad configuration: unknown or invalid flag, config key or value",
    EXIT_INPUT: "bad input data: unreadable file, missing column, wrong type, NaN, ...",
    EXIT_NOT_CONVERGED: "the fit did not converge and output.on_not_converged is fail",
    EXIT_ENGINE: "engine or infrastructure failure: scheduler or master unreachable, "
                 "worker lost, out of memory, I/O error (the path named), the output held "
                 "by another run",
    EXIT_MANIFEST: "the manifest is unreadable or does not match its JSON Schema, or the "
                   "report beside it is another run's",
    EXIT_DRIFT: "the selection drifted from drift.baseline by more than drift.max_churn "
                "(Jaccard distance of the selected sets); the new manifest is written, with "
                "its drift section: hold the downstream job",
    EXIT_INTERRUPTED: "interrupted by SIGINT (Ctrl-C); nothing written, temporary files removed",
    EXIT_TERMINATED: "terminated by SIGTERM; nothing written, temporary files removed",
}
ENGINE_MODULES = ("distributed", "dask", "py4j", "pyspark", "tornado", "asyncio")

log = logging.getLogger("elasticnet_dist")

EXAMPLES = """examples:
  elasticnet-dist demo
  elasticnet-dist select --input data/table/ --label y --output out/
  elasticnet-dist select --config conf/dask-cluster.yaml --input s3://bucket/table/ \\
      --label churned --loss logistic --keys customer_id --output out/
  elasticnet-dist select --input t/ --label y --alpha 0.05 --l1-ratio 0.9 --output out/
  elasticnet-dist select --input t/ --label y --master spark://head:7077 --output out/
  elasticnet-dist select --input t/ --label y --output out/ --stats-store state/ \\
      --warm-start out/manifest.json
  elasticnet-dist apply --manifest out/manifest.json --input t/ --output reduced/
  elasticnet-dist validate out/manifest.json --input t/
  elasticnet-dist report out/manifest.json

exit codes:
""" + "\n".join("  %d  %s" % kv for kv in EXIT_CODES.items())


# ---- logging ----------------------------------------------------------------------------

class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message
    (secrets scrubbed, :func:`elasticnet_dist.redaction.scrub`)."""

    def format(self, record):
        from .redaction import scrub

        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + ".%03dZ" % record.msecs, "level": record.levelname.lower(),
               "logger": record.name, "message": scrub(record.getMessage())}
        if record.exc_info:
            out["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out)


class ScrubbingFormatter(logging.Formatter):
    """Text lines with secrets scrubbed from the message and any traceback."""

    def format(self, record):
        from .redaction import scrub

        return scrub(super().format(record))


class _StatusAwareHandler(logging.StreamHandler):
    """Writes each record on a line of its own, below a progress status line."""

    def emit(self, record):
        from . import progress

        progress.clear_line()
        super().emit(record)


def setup_logging(level="info", fmt="text"):
    """Our records (and the engines' warnings) on stderr, as text or JSON lines.

    The tool's logger has a handler of its own: Dask's ``LocalCluster`` lowers the
    level of every stream handler on the ``distributed`` logger while it starts
    (``silence_logging``), which silenced the tool's own lines when the two shared
    one handler."""
    for name, lvl in (("elasticnet_dist", level.upper()), ("distributed", "WARNING"),
                      ("py4j", "WARNING")):
        handler = _StatusAwareHandler(sys.stderr)
        handler.setFormatter(JsonLinesFormatter() if fmt == "json" else ScrubbingFormatter(
            "%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(lvl)
        logger.propagate = False
    # other libraries' warnings (urllib3 retries, MLflow) are scrubbed too, not left to
    # Python's last-resort handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else ScrubbingFormatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger().handlers = [handler]


def _progress(mode):
    from . import progress

    show = mode == "always" or (mode == "auto" and sys.stderr.isatty())
    return progress.observing(progress.TerminalProgress(sys.stderr)) if show else _nothing()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---- flags -> configuration ----------------------------------------------------------------

def _ratios(text):
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected numbers separated by commas, got %r"
                                         % text) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one l1_ratio")
    return values


#: flag destination -> (section, key)
FLAG_KEYS = {
    "input": ("input", "path"), "label": ("input", "label"), "features": ("input", "features"),
    "exclude": ("input", "exclude"), "weight": ("input", "weight"), "keys": ("input", "keys"),
    "offset": ("input", "offset"), "vector": ("input", "vector"),
    "max_levels": ("input", "max_levels"),
    "nan_policy": ("input", "nan_policy"), "loss": ("model", "loss"),
    "max_iter": ("model", "max_iter"), "tol": ("model", "tol"),
    "engine": ("engine", "name"), "scheduler": ("engine", "scheduler"),
    "master": ("engine", "master"), "alpha": ("penalty", "alpha"),
    "l1_ratio": ("penalty", "l1_ratio"), "l1_ratios": ("search", "l1_ratios"),
    "cv": ("search", "cv"), "selection": ("search", "selection"),
    "max_features": ("search", "max_features"), "n_alphas": ("search", "n_alphas"),
    "stability": ("search", "stability"), "min_stability": ("search", "min_stability"),
    "warm_start": ("search", "warm_start"),
    "output": ("output", "dir"), "on_not_converged": ("output", "on_not_converged"),
    "report": ("output", "report"), "mlflow": ("output", "mlflow"),
    "checkpoint_dir": ("output", "checkpoint_dir"), "stats_store": ("output", "stats_store"),
    "baseline": ("drift", "baseline"), "max_churn": ("drift", "max_churn"),
    "coef_change": ("drift", "coef_change"),
    "log_level": ("logging", "level"), "log_format": ("logging", "format"),
    "progress": ("logging", "progress"),
}


def flags_layer(args) -> dict:
    """The flags given on the command line as a configuration layer. A scheduler
    address implies the dask engine, a master URL the spark engine, unless
    ``--engine`` says otherwise."""
    layer = {}
    for dest, (section, key) in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            layer.setdefault(section, {})[key] = value
    engine = layer.get("engine", {})
    if "name" not in engine:
        if engine.get("scheduler"):
            engine["name"] = "dask"
        elif engine.get("master"):
            engine["name"] = "spark"
    return layer


def _add_common(p):
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", choices=cfg.choices("logging.level"))
    g.add_argument("--log-format", choices=cfg.choices("logging.format"),
                   help="text (default) or JSON lines on stderr")
    g.add_argument("--progress", choices=cfg.choices("logging.progress"),
                   help="passes and path points on stderr (auto: on a terminal only)")
    g.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_engine(p):
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=cfg.choices("engine.name"),
                   help="where the passes run (default: auto: the local engine for a table "
                        "under 256 MB, else an embedded Dask LocalCluster; demo: dask)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://host:8786")
    g.add_argument("--master", metavar="URL", help="Spark master, spark://host:7077 or yarn")
    _add_config(g)


def _add_config(group):
    group.add_argument("--config", metavar="FILE", action="append", default=[],
                       help="YAML configuration (repeatable; later files win; flags win over "
                            "all)")


def _files_config(args, layer=None):
    """The configuration of ``--config`` files and ``layer``, each checked key by key
    (without the rules between keys, which concern select): for commands that only
    read manifests and tables (their storage options, drift options)."""
    config = cfg.defaults()
    for path in args.config:
        config = cfg.merge(config, cfg.load_file(path), path)
    return cfg.merge(config, layer, "the command-line flags")


def _add_select_flags(p, *, demo=False):
    if not demo:
        p.add_argument("--input", metavar="PATH", help="Parquet file, folder, glob or URL")
        p.add_argument("--label", metavar="COL", help="the label column")
        p.add_argument("--features", metavar="NAME_OR_GLOB", nargs="+", action="extend",
                       help="feature columns (default: every numeric column)")
        p.add_argument("--exclude", metavar="NAME_OR_GLOB", nargs="+", action="extend")
        p.add_argument("--vector", metavar="COL",
                       help="a column of Spark ML vectors holding the features (sparse ones "
                            "stay sparse)")
        p.add_argument("--max-levels", metavar="N", type=int,
                       help="string columns with at most N levels are categorical features "
                            "(default 50; 0: none)")
        p.add_argument("--weight", metavar="COL", help="a column of row weights")
        p.add_argument("--offset", metavar="COL",
                       help="a column of log exposures (loss poisson)")
        p.add_argument("--keys", metavar="COL", nargs="+", action="extend",
                       help="pass-through key columns (hashed for the CV folds)")
        p.add_argument("--output", metavar="DIR", help="where manifest.json is written")
        p.add_argument("--nan-policy", choices=cfg.choices("input.nan_policy"))
    p.add_argument("--loss", choices=cfg.choices("model.loss"))
    p.add_argument("--alpha", type=float, help="fix the penalty constant (no CV)")
    p.add_argument("--l1-ratio", type=float, help="L1 share with --alpha")
    p.add_argument("--l1-ratios", type=_ratios, metavar="R1,R2,...",
                   help="L1 shares of the CV grid")
    p.add_argument("--cv", type=int, metavar="K", help="folds")
    p.add_argument("--selection", choices=cfg.choices("search.selection"))
    p.add_argument("--max-features", type=int, metavar="K")
    p.add_argument("--n-alphas", type=int, metavar="N")
    p.add_argument("--stability", type=int, metavar="N",
                   help="selection frequencies over N half-samples at the chosen penalty")
    p.add_argument("--min-stability", type=float, metavar="FRACTION",
                   help="keep only features selected in at least this share of them")
    p.add_argument("--max-iter", type=int, metavar="N")
    p.add_argument("--tol", type=float)
    p.add_argument("--on-not-converged", choices=cfg.choices("output.on_not_converged"))
    p.add_argument("--no-report", dest="report", action="store_const", const=False,
                   help="do not write report.html and its figures beside the manifest")
    p.add_argument("--mlflow", metavar="URI", nargs="?", const="local",
                   help="log the run to MLflow: a tracking URI, or no value for a file "
                        "store in OUTPUT/mlruns (needs the mlflow extra)")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="save progress in DIR; a rerun after a crash resumes from it")
    p.add_argument("--stats-store", metavar="DIR_OR_URL",
                   help="keep each Parquet piece's statistics in DIR_OR_URL: a rerun reads "
                        "only files it has not seen (the one-pass route), with the same result")
    if not demo:
        p.add_argument("--warm-start", metavar="MANIFEST",
                       help="search around a previous run's penalty, from its coefficients")
        p.add_argument("--baseline", metavar="MANIFEST")
        p.add_argument("--max-churn", type=float, metavar="FRACTION")
        p.add_argument("--coef-change", type=float, metavar="FRACTION")


def _document(parser):
    """Every flag that sets a configuration key says what it does and its default,
    from :data:`elasticnet_dist.config.SPEC` (one description for both)."""
    for action in parser._actions:
        if action.dest not in FLAG_KEYS:
            continue
        section, key = FLAG_KEYS[action.dest]
        option = cfg.SPEC[section][key]
        text = action.help or option.doc.split(" (--")[0]
        if "default" not in text:
            text += " (%s.%s; default: %s)" % (section, key, json.dumps(option.default))
        action.help = text.replace("%", "%%")


def _add_manifest(p):
    """The manifest, as ``FILE`` or ``--manifest FILE`` (as ``apply`` takes it); both
    land in ``args.manifest``."""
    p.add_argument("manifest", metavar="FILE", nargs="?", default=argparse.SUPPRESS,
                   help="the manifest")
    p.add_argument("--manifest", dest="manifest", metavar="FILE", default=argparse.SUPPRESS,
                   help="the manifest (instead of FILE, as apply takes it)")


def _manifest_arg(args):
    if getattr(args, "manifest", None) is None:
        raise ConfigError("give the manifest: %s FILE or --manifest FILE" % args.command)
    return args.manifest


def build_parser():
    from . import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="elasticnet-dist", formatter_class=fmt, epilog=EXAMPLES,
        description="Elastic-net feature selection for wide tables, on Dask or Spark.")
    parser.add_argument("--version", action="version", version="elasticnet-dist " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    select = sub.add_parser("select", formatter_class=fmt, epilog=EXAMPLES,
                            help="fit and write the selected-feature manifest")
    _add_select_flags(select)
    _add_engine(select)
    _add_common(select)
    _document(select)
    select.set_defaults(func=_select)

    apply = sub.add_parser("apply", formatter_class=fmt, epilog=EXAMPLES,
                           help="write a table projected onto a manifest's reduced schema")
    apply.add_argument("--manifest", metavar="FILE", required=True)
    apply.add_argument("--input", metavar="PATH", required=True)
    apply.add_argument("--output", metavar="PATH", required=True,
                       help="folder of Parquet files (replaced whole, atomically)")
    _add_engine(apply)
    _add_common(apply)
    apply.set_defaults(func=_apply)

    validate = sub.add_parser("validate", formatter_class=fmt, epilog=EXAMPLES,
                              help="check a manifest, and a table against it")
    _add_manifest(validate)
    validate.add_argument("--input", metavar="PATH",
                          help="also check that this table has the reduced schema")
    _add_config(validate)
    _add_common(validate)
    validate.set_defaults(func=_validate)

    report = sub.add_parser("report", formatter_class=fmt, epilog=EXAMPLES,
                            help="(re)build report.html and its figures from a manifest")
    _add_manifest(report)
    report.add_argument("--output", metavar="DIR",
                        help="where to write them (default: beside the manifest)")
    _add_common(report)
    report.set_defaults(func=_report)

    diff = sub.add_parser("diff", formatter_class=fmt, epilog=EXAMPLES,
                          help="what changed between two manifests: features that entered "
                               "and left, coefficient changes, penalty, CV score, schema")
    diff.add_argument("old", metavar="OLD_MANIFEST")
    diff.add_argument("new", metavar="NEW_MANIFEST")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--coef-change", type=float, metavar="FRACTION",
                      help="report kept features whose standardized coefficient moved by "
                           "more than this fraction of its old size (default: 0.5)")
    diff.add_argument("--max-churn", type=float, metavar="FRACTION",
                      help="exit 7 when the Jaccard distance of the selected sets exceeds "
                           "this")
    _add_config(diff)
    _add_common(diff)
    diff.set_defaults(func=_diff)

    demo = sub.add_parser("demo", formatter_class=fmt, epilog=EXAMPLES,
                          help="generate a seeded sample table and run select on it")
    demo.add_argument("--rows", type=int, default=5000)
    demo.add_argument("--features", dest="n_features", type=int, default=1000,
                      help="feature columns of the sample table")
    demo.add_argument("--informative", type=int, default=25)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--files", type=int, default=8, help="Parquet files of the sample table")
    demo.add_argument("--workdir", default=None,
                      help="where the table and the manifest go (default: a temporary folder)")
    _add_select_flags(demo, demo=True)
    _add_engine(demo)
    _add_common(demo)
    _document(demo)
    demo.set_defaults(func=_demo)
    return parser


# ---- commands ------------------------------------------------------------------------------

def _resolve(args, extra=None):
    layer = flags_layer(args)
    for section, values in (extra or {}).items():
        layer.setdefault(section, {}).update(values)
    config = cfg.resolve(args.config, layer)
    from .redaction import remember

    remember(config)  # its secrets are scrubbed from every log line from here on
    setup_logging(config["logging"]["level"], config["logging"]["format"])
    if getattr(args, "l1_ratio", None) is not None and config["penalty"]["alpha"] is None:
        if getattr(args, "l1_ratios", None) is not None:
            raise ConfigError("--l1-ratio is the L1 share of a fixed --alpha; for the "
                              "cross-validated search give the grid as --l1-ratios, not both")
        config["search"]["l1_ratios"] = [args.l1_ratio]
        log.info("--l1-ratio %g without --alpha: the cross-validation searches this one "
                 "l1_ratio (--l1-ratios R1,R2,... for a grid)", args.l1_ratio)
    return config


def _select(args):
    from .stage import select

    config = _resolve(args)
    with _progress(config["logging"]["progress"]):
        path, _ = select(config)
    print(path)
    return EXIT_OK


def _apply(args):
    from .outputs import output_location
    from .stage import apply, output_storage_options

    config = _resolve(args)
    apply(args.manifest, args.input, args.output, config,
          storage_options=config["input"]["storage_options"] or None,
          output_storage_options=output_storage_options(config))
    print(output_location(args.output, "--output"))
    return EXIT_OK


def _validate(args):
    from .redaction import remember
    from .stage import validate

    path = _manifest_arg(args)
    config = _files_config(args)
    remember(config)
    manifest = validate(path, args.input, config["input"]["storage_options"] or None)
    log.info("%s is a valid manifest (%d selected features, %d reduced-schema columns)%s",
             path, len(manifest.selected), len(manifest.columns),
             "; %s matches it" % args.input if args.input else "")
    print("ok")
    return EXIT_OK


def _report(args):
    from .outputs import folder_lock, local_output_path
    from .report import plotting_available, write_report
    from .stage import _checked, prepare_folder

    path = _manifest_arg(args)
    folder = local_output_path(args.output or os.path.dirname(os.path.abspath(path)),
                               "--output")
    if not plotting_available():
        raise ConfigError("the report needs matplotlib: pip install 'elasticnet_dist[plot]'")
    manifest = _checked(path, None, None)[0]  # not validate(): it rebuilds a stale report
    prepare_folder(folder, "--output")
    with folder_lock(folder, "the report folder %s" % folder):
        files = write_report(manifest.document, folder,
                             manifest_name=os.path.relpath(os.path.abspath(path), folder))
    log.info("report written to %s with %d figures", files[0], len(files) - 1)
    print(files[0])
    return EXIT_OK


def _diff(args):
    from .drift import compare, text_lines
    from .manifest import read_manifest
    from .redaction import remember
    from .stage import output_storage_options

    setup_logging(args.log_level or "info", args.log_format or "text")
    layer = {"drift": {key: value for key, value in (("coef_change", args.coef_change),
                                                     ("max_churn", args.max_churn))
                       if value is not None}}
    config = _files_config(args, layer)
    remember(config)
    options, store = config["drift"], output_storage_options(config)
    old, new = read_manifest(args.old, store), read_manifest(args.new, store)
    drift = compare(old.document, new.document, baseline_path=args.old,
                    coef_change=options["coef_change"], max_churn=options["max_churn"])
    if args.format == "json":
        print(json.dumps(drift, indent=2))
    else:
        print("\n".join(text_lines(drift)))
    if drift["exceeded"]:
        raise DriftExceededError("churn %.3f exceeds --max-churn %g between %s and %s"
                                 % (drift["churn"], drift["max_churn"], args.old, args.new))
    return EXIT_OK


def _demo(args):
    import tempfile

    import numpy as np

    from .datasets import make_wide_table, write_parquet
    from .stage import select, summary_lines

    loss = args.loss or "squared"
    table = make_wide_table(args.rows, args.n_features, args.informative, loss=loss,
                            seed=args.seed)
    workdir = args.workdir or tempfile.mkdtemp(prefix="elasticnet_dist-demo-")
    path = write_parquet(table, os.path.join(workdir, "sample-table"), n_files=args.files)
    print("table: %s, %d rows x %d columns in %d Parquet files (seed %d), %d informative, "
          "loss=%s" % (path, args.rows, args.n_features, args.files, args.seed,
                       args.informative, loss))
    embedded = {} if args.engine or args.scheduler or args.master else {
        "engine": {"name": "dask"}}  # the demo shows the cluster path, whatever the size
    config = _resolve(args, {"input": {"path": path, "label": "y"},
                             "output": {"dir": os.path.join(workdir, "selection")}, **embedded})
    t0 = time.perf_counter()
    with _progress(config["logging"]["progress"]):
        manifest_path, doc = select(config)
    eng, solver, pen = doc["engine"], doc["solver"], doc["penalty"]
    print("engine: %s, %s (started in %.2f s), %s, %d rows, %.1f MB cached"
          % (eng["name"], count(eng["workers"], "worker"), solver["timings"]["engine_start"],
             count(eng["partitions"], "partition"), doc["input"]["rows_used"],
             eng["bytes_cached"] / 1e6))
    sel = doc["selection"]
    how = ("%d-fold CV over %d l1_ratios x %d alphas, rule %s"
           % (sel["folds"], len(sel["grid"]), len(sel["grid"][0]["alphas"]), sel["rule"])
           if sel["method"] == "cross_validation" else "fixed")
    print("penalty: alpha=%.6g, l1_ratio=%g (%s)" % (pen["alpha"], pen["l1_ratio"], how))
    phases = {"engine_start": "engine start", "load": "load", "statistics": "statistics",
              "paths": "paths", "solve": "solve"}
    print("fit: %s, %s, duality gap %.2e, converged: %s; %.2f s in all (%s)"
          % (solver["name"], count(solver["data_passes"], "data pass"), solver["duality_gap"],
             str(solver["converged"]).lower(), time.perf_counter() - t0,
             ", ".join("%s %.2f s" % (phases[k], solver["timings"][k]) for k in phases
                       if k in solver["timings"])))
    scores = sel.get("scores")
    if scores:
        print("CV %s: %.5g (se %.2g) at the chosen point, %.5g (se %.2g) at the best "
              "(alpha=%.6g, l1_ratio=%g)%s" % (
                  sel["metric"], scores["chosen"]["mean"], scores["chosen"]["se"],
                  scores["best"]["mean"], scores["best"]["se"], scores["best"]["alpha"],
                  scores["best"]["l1_ratio"], "; the best is at the %s of the grid"
                  % sel["at_grid_edge"].replace("_", " ") if sel.get("at_grid_edge") else ""))
    chosen = {f["name"] for f in doc["selected"]}
    truth = {table.names[j] for j in np.flatnonzero(table.coef)}
    print("selected %d of %d features; %d of the %d informative ones"
          % (len(chosen), args.n_features, len(truth & chosen), len(truth)))
    for line in summary_lines(doc)[1:]:
        print(line)
    print("manifest: %s" % manifest_path)
    page = os.path.join(os.path.dirname(manifest_path), "report.html")
    if os.path.exists(page):
        print("report: %s" % page)
    return EXIT_OK


# ---- errors -> exit codes ------------------------------------------------------------------

def exit_code_of(exc) -> int:
    """The documented exit code for an exception (see :data:`EXIT_CODES`)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, ManifestError):
        return EXIT_MANIFEST
    if isinstance(exc, (InputError, NonFiniteDataError)):
        return EXIT_INPUT
    if isinstance(exc, NotConvergedError):
        return EXIT_NOT_CONVERGED
    if isinstance(exc, DriftExceededError):
        return EXIT_DRIFT
    if isinstance(exc, (EngineError, OSError, TimeoutError, MemoryError, ImportError)) \
            or type(exc).__module__.split(".")[0] in ENGINE_MODULES:
        return EXIT_ENGINE
    if isinstance(exc, ValueError):  # an estimator option the configuration let through
        return EXIT_CONFIG
    return EXIT_INTERNAL


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    setup_logging(args.log_level or "info", args.log_format or "text")
    previous = _handle_sigterm()
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into a reader that stopped early (e.g. head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        log.error("interrupted (SIGINT): temporary files removed, earlier outputs kept "
                  "(exit %d)", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Terminated:
        log.error("terminated (SIGTERM): temporary files removed, earlier outputs kept "
                  "(exit %d)", EXIT_TERMINATED)
        return EXIT_TERMINATED
    except MemoryError:
        log.error("out of memory on the driver (MemoryError); lower search.n_alphas, "
                  "search.cv or the features read, or use a larger machine (exit %d)",
                  EXIT_ENGINE)
        return EXIT_ENGINE
    except RecursionError as exc:
        log.error("input nested too deeply (RecursionError: %s) (exit %d)", exc, EXIT_CONFIG)
        return EXIT_CONFIG
    except Exception as exc:
        if not isinstance(exc, EngineError):  # a call into a dead JVM outside a pass
            from .engines.spark_engine import jvm_gone
            exc = jvm_gone(exc) or exc
        code = exit_code_of(exc)
        if args.debug or code == EXIT_INTERNAL:
            log.error("%s (exit %d)", _describe(exc), code, exc_info=exc)
        else:
            log.error("%s (exit %d)", _describe(exc), code)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _handle_sigterm():
    """SIGTERM raises :class:`Terminated` in the main thread, so that every ``finally``
    and ``except BaseException`` on the way out removes its temporary files and
    staging folders and stops the engine, as Ctrl-C (KeyboardInterrupt) does; the
    exit code is then 143. Returns the previous handler (None off the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminate)


def _describe(exc):
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (ConfigError, InputError, NonFiniteDataError, ManifestError,
                        NotConvergedError, EngineError)):
        return text
    return "%s: %s" % (type(exc).__name__, text)


if __name__ == "__main__":
    sys.exit(main())
