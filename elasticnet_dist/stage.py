"""The pipeline stage behind the command line: ``select``, ``apply``, ``validate``.

Each function takes a resolved configuration (:mod:`elasticnet_dist.config`)
or plain arguments, does its work on the configured engine, and raises the
package's errors (never exits): the command line maps them to exit codes.
Nothing is written unless the whole step succeeded.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import time
import uuid
import warnings

from . import checkpoint
from . import config as cfg
from .engines import make_engine
from .errors import ConfigError, EngineError, NotConvergedError
from .manifest import (MANIFEST_NAME, build_manifest, check_manifest, check_table_matches,
                       dumps, read_manifest, write_atomic)

log = logging.getLogger("elasticnet_dist")


def engine_address(config):
    """The configured scheduler or master (None: an embedded or active one)."""
    engine = config["engine"]
    return engine["scheduler"] if engine["name"] == "dask" else (
        engine["master"] if engine["name"] == "spark" else None)


def open_engine(config):
    """The engine the configuration names; an :class:`EngineError` if it cannot
    be started or reached (the address, the cause)."""
    engine = config["engine"]
    name, address = engine["name"], engine_address(config)
    options = {}
    if name == "local":
        options = {"cache": engine["cache"]}
    if name == "dask":
        options = {"n_workers": engine["dask_workers"], "timeout": engine["connect_timeout"],
                   "cache": engine["cache"]}
    elif name == "spark":
        options = {"conf": engine["spark_conf"]}
    try:
        started = make_engine(name, address, **options)
    except Exception as exc:
        raise EngineError("cannot %s the %s engine%s: %s" % (
            "reach" if address else "start", name, " at %s" % address if address else "",
            _one_line(exc))) from exc
    where = {"dask": " (embedded LocalCluster)", "spark": " (active or local[*] session)"}
    log.info("engine %s%s: %d workers", name, " at %s" % address if address
             else where.get(name, ""), started.n_workers())
    return started


def make_estimator(config, engine):
    """:class:`ElasticNet` for a fixed ``penalty.alpha``, else :class:`ElasticNetCV`."""
    from . import ElasticNet, ElasticNetCV

    model, inp = config["model"], config["input"]
    common = dict(loss=model["loss"], fit_intercept=model["fit_intercept"],
                  standardize=model["standardize"],
                  penalty_factor=model["penalty_factor"] or None, tol=model["tol"],
                  max_iter=model["max_iter"], engine=engine, dtype=inp["dtype"],
                  nan_policy=inp["nan_policy"],
                  checkpoint_dir=config["output"]["checkpoint_dir"])
    penalty, search = config["penalty"], config["search"]
    if penalty["alpha"] is not None:
        return ElasticNet(alpha=penalty["alpha"], l1_ratio=penalty["l1_ratio"], **common)
    return ElasticNetCV(l1_ratio=list(search["l1_ratios"]), n_alphas=search["n_alphas"],
                        eps=search["eps"], cv=search["cv"], selection=search["selection"],
                        max_features=search["max_features"], scoring=search["scoring"],
                        screening=model["screening"],
                        gram_max_features=search["gram_max_features"],
                        fold_seed=search["fold_seed"], devmax=search["devmax"],
                        fdev=search["fdev"], **common)


def select(config):
    """Fit as configured and write ``<output.dir>/manifest.json``; returns
    ``(path, manifest)``. A model that did not converge raises
    :class:`NotConvergedError` (nothing written) when ``output.on_not_converged``
    is ``fail``; with ``warn`` the manifest records ``converged: false``."""
    cfg.require(config, "input.path", "input.label", "output.dir")
    inp, out = config["input"], config["output"]
    target = os.path.join(out["dir"], MANIFEST_NAME)
    prepare_folder(out["dir"])
    if out["mlflow"]:
        from .tracking import require_mlflow

        require_mlflow()  # before the fit, not after it
    t0 = time.perf_counter()
    engine = open_engine(config)
    started = time.perf_counter() - t0
    try:
        est = make_estimator(config, engine)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(inp["path"], label=inp["label"], weight=inp["weight"],
                    features=inp["features"], exclude=inp["exclude"] or None,
                    keys=inp["keys"] or None, storage_options=inp["storage_options"] or None,
                    **({"fold_column": inp["fold_column"]} if inp["fold_column"] else {}))
        for w in caught:
            log.warning("%s", w.message)
    finally:
        engine.close()
    est.fit_report_["engine_start_s"] = started  # the estimator was handed a running engine
    document = build_manifest(est, cfg.redacted(config), engine_address=engine_address(config))
    check_manifest(document, "the new manifest")
    n_selected = len(document["selected"])
    log.info("selected %d of %d features (alpha=%.6g, l1_ratio=%g, %s); %d data passes",
             n_selected, len(est.feature_names_in_), document["penalty"]["alpha"],
             document["penalty"]["l1_ratio"], document["selection"]["method"],
             document["solver"]["data_passes"])
    if not est.converged_:
        message = ("the chosen fit did not converge: duality gap %.3e after %d data passes; "
                   "raise model.max_iter or model.tol"
                   % (est.dual_gap_, document["solver"]["data_passes"]))
        if out["on_not_converged"] == "fail":
            raise NotConvergedError(message + " (output.on_not_converged: fail; nothing written)")
        log.warning("%s (output.on_not_converged: warn; the manifest says converged: false)",
                    message)
    write_atomic(target, dumps(document))
    log.info("manifest written to %s", target)
    if out["checkpoint_dir"]:
        checkpoint.clear(out["checkpoint_dir"])
    report_files = write_report_beside(target, document) if out["report"] else []
    if out["mlflow"]:
        from .tracking import log_selection

        log_selection(document, [target, *report_files], out["mlflow"],
                      out["mlflow_experiment"], out["dir"])
    return target, document


def write_report_beside(manifest_path, document):
    """``report.html`` and its figures beside ``manifest_path``; returns the files
    written. The report is derived from the manifest, which is already in place:
    without matplotlib (the plot extra), or if drawing fails, a log line says so
    and the stage goes on (``elasticnet-dist report`` can rebuild it later)."""
    from .report import plotting_available, write_report

    if not plotting_available():
        log.info("report skipped: matplotlib is not installed "
                 "(pip install 'elasticnet_dist[plot]')")
        return []
    folder = os.path.dirname(os.path.abspath(manifest_path))
    try:
        files = write_report(document, folder, manifest_name=os.path.basename(manifest_path))
    except Exception as exc:
        log.warning("report not written (%s: %s); the manifest is; rebuild it with "
                    "elasticnet-dist report %s", type(exc).__name__, exc, manifest_path)
        return []
    log.info("report written to %s (%d figures)", files[0], len(files) - 1)
    return files


def prepare_folder(folder, what="output.dir"):
    """Create ``folder`` if needed; a :class:`ConfigError` naming ``what`` if it
    cannot be created or written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConfigError("%s %s cannot be created: %s" % (what, folder, exc.strerror)) \
            from None
    if not os.access(folder, os.W_OK):
        raise ConfigError("%s %s is not writable" % (what, folder))


def validate(manifest_path, input_path=None, storage_options=None):
    """Check a manifest against its schema and, with ``input_path``, that the table
    still holds every reduced-schema column with its recorded type. Returns the
    :class:`~elasticnet_dist.manifest.Manifest`; raises otherwise."""
    return _checked(manifest_path, input_path, storage_options)[0]


def _checked(manifest_path, input_path, storage_options):
    """(manifest, the resolved table or None), both checked as :func:`validate` says."""
    manifest = read_manifest(manifest_path)
    if input_path is None:
        return manifest, None
    from .io.table import check_file_schemas, open_table

    table = open_table(input_path, storage_options)
    check_table_matches(manifest, table.schema, table.uri)
    check_file_schemas(table, manifest.columns)
    return manifest, table


def apply(manifest_path, input_path, output, config, storage_options=None):
    """Write ``input_path`` projected onto the manifest's ``reduced_schema`` as
    Parquet under ``output`` (a folder of ``part-NNNNN.parquet``, one per input
    file, rows in input order, Arrow types unchanged), each file written by a
    worker of the configured engine. The folder appears whole or not at all: the
    parts go to a sibling folder that is renamed into place at the end (an
    earlier ``output`` is replaced only then). Returns the number of rows written."""
    manifest, table = _checked(manifest_path, input_path, storage_options)
    output = os.path.abspath(output)
    parent = os.path.dirname(output)
    prepare_folder(parent)
    staging = os.path.join(parent, ".%s.%s.tmp" % (os.path.basename(output), uuid.uuid4().hex))
    os.makedirs(staging)
    try:
        engine = open_engine(config)
        try:
            jobs = list(enumerate(table.pieces))
            task = functools.partial(_write_piece, columns=manifest.columns, folder=staging)
            rows = _map_on(engine, task, jobs)
        finally:
            engine.close()
        _swap_into_place(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %d rows x %d columns (the reduced schema of %s) to %s in %d files",
             sum(rows), len(manifest.columns), manifest_path, output, len(rows))
    return int(sum(rows))


def _write_piece(job, columns, folder):
    import pyarrow.parquet as pq

    index, piece = job
    frame = piece.read(columns)
    pq.write_table(frame, os.path.join(folder, "part-%05d.parquet" % index))
    return frame.num_rows


def _map_on(engine, task, jobs):
    """``[task(job) for job in jobs]``, run by the engine's workers."""
    if engine.name == "dask":
        client = engine.client
        return client.gather(client.map(task, jobs, pure=False))
    if engine.name == "spark":
        sc = engine.session.sparkContext
        n = max(1, min(len(jobs), int(sc.defaultParallelism)))
        return sc.parallelize(jobs, n).map(task).collect()
    return [task(job) for job in jobs]


def _swap_into_place(staging, output):
    """Rename ``staging`` to ``output``; an existing ``output`` is moved aside first
    and removed only once the new folder is in place."""
    old = None
    if os.path.lexists(output):
        old = staging + ".old"
        os.rename(output, old)
    try:
        os.rename(staging, output)
    except BaseException:
        if old is not None:
            os.rename(old, output)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.unlink(old)


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "")


def summary_lines(document, limit=10):
    """A few human lines about a manifest (what the demo prints)."""
    sel = document["selected"]
    lines = ["selected %d features; top %d by |standardized coefficient|:"
             % (len(sel), min(limit, len(sel)))]
    for f in sel[:limit]:
        lines.append("  %-24s %+.4f" % (f["name"], f["coefficient_standardized"]))
    reasons = {}
    for d in document["dropped"]:
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
    lines.append("dropped: " + ", ".join("%d %s" % (k, r) for r, k in sorted(reasons.items())))
    return lines


__all__ = ["apply", "make_estimator", "open_engine", "select", "validate"]
