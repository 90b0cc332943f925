"""The pipeline stage behind the command line: ``select``, ``apply``, ``validate``.

Each function takes a resolved configuration (:mod:`elasticnet_dist.config`)
or plain arguments, does its work on the configured engine, and raises the
package's errors (never exits): the command line maps them to exit codes.
Nothing is written unless the whole step succeeded.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import os
import posixpath
import shutil
import tempfile
import time
import uuid
import warnings

from . import checkpoint
from ._text import count
from . import config as cfg
from .engines import make_engine
from .drift import compare, text_lines
from .errors import (ConfigError, DriftExceededError, EngineError, ManifestError,
                     NotConvergedError, OutputWriteError)
from .losses import same_loss
from .manifest import (MANIFEST_NAME, build_manifest, check_manifest, check_table_matches,
                       dumps, read_manifest, write_atomic)
from .outputs import (APPLY_MARKER, check_apart, check_replaceable, commit_files,
                      commit_to_store, folder_lock, is_store_url, join_location,
                      local_output_path, output_location, prepare_store_folder,
                      replace_folder, sibling_lock, signals_deferred)
from .redaction import scrub

log = logging.getLogger("elasticnet_dist")


def engine_address(config):
    """The configured scheduler or master (None: an embedded or active one)."""
    engine = config["engine"]
    return engine["scheduler"] if engine["name"] == "dask" else (
        engine["master"] if engine["name"] == "spark" else None)


#: ``engine.name: auto`` takes the local engine for tables whose Parquet footers
#: add up to less than this (uncompressed): one piece, which workers cannot share.
AUTO_LOCAL_BYTES = 256 * 2**20


def resolve_engine(config, source, storage_options=None, table=None):
    """``config`` with ``engine.name: auto`` resolved for the table at ``source``
    (:data:`AUTO_LOCAL_BYTES`; ``table``: the source already opened), the choice and
    its reason logged."""
    engine = config["engine"]
    if engine["name"] != "auto":
        return config
    if table is None:
        from .io.table import open_table

        table = open_table(source, storage_options)
    size = sum(f["uncompressed_bytes"] for f in table.files)
    name = "local" if table.kind == "files" and size < AUTO_LOCAL_BYTES else "dask"
    log.info("engine auto: %s for %s of %.1f MB (the local engine below %d MB; "
             "--engine dask or spark to choose)", "the local engine" if name == "local"
             else "an embedded Dask cluster", table.uri, size / 1e6, AUTO_LOCAL_BYTES >> 20)
    return {**config, "engine": {**engine, "name": name}}


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
    log.info("engine %s%s: %s", name, " at %s" % address if address
             else where.get(name, ""), count(started.n_workers(), "worker"))
    return started


def make_estimator(config, engine, warm_start=None):
    """:class:`ElasticNet` for a fixed ``penalty.alpha``, else :class:`ElasticNetCV`
    (``warm_start``: the :class:`Manifest` of ``search.warm_start``)."""
    from . import ElasticNet, ElasticNetCV

    model, inp = config["model"], config["input"]
    common = dict(loss=model["loss"], fit_intercept=model["fit_intercept"],
                  standardize=model["standardize"],
                  penalty_factor=model["penalty_factor"] or None, tol=model["tol"],
                  max_iter=model["max_iter"], engine=engine, dtype=inp["dtype"],
                  nan_policy=inp["nan_policy"],
                  checkpoint_dir=config["output"]["checkpoint_dir"],
                  stats_store=config["output"]["stats_store"])
    penalty, search = config["penalty"], config["search"]
    if penalty["alpha"] is not None:
        return ElasticNet(alpha=penalty["alpha"], l1_ratio=penalty["l1_ratio"], **common)
    return ElasticNetCV(l1_ratio=list(search["l1_ratios"]), alphas=search["n_alphas"],
                        eps=search["eps"], cv=search["cv"], selection=search["selection"],
                        max_features=search["max_features"], scoring=search["scoring"],
                        screening=model["screening"],
                        gram_max_features=search["gram_max_features"],
                        fold_seed=search["fold_seed"], devmax=search["devmax"],
                        fdev=search["fdev"], early_stop=search["early_stop"],
                        stability=search["stability"],
                        stability_groups=search["stability_groups"],
                        min_stability=search["min_stability"], warm_start_from=warm_start,
                        **common)


def select(config):
    """Fit as configured and write ``<output.dir>/manifest.json`` (and the report
    beside it); returns ``(path, manifest)``. A model that did not converge raises
    :class:`NotConvergedError` (nothing written) when ``output.on_not_converged``
    is ``fail``; with ``warn`` the manifest records ``converged: false``.

    The output folder is held by an exclusive lock for the run (a second run on it
    fails at once, naming this one), and the manifest and its report are moved
    into it together, the manifest last, in one step that SIGINT/SIGTERM cannot
    cut: a reader sees the old manifest and report or the new ones. On a store
    (``output.dir`` an fsspec URL) the files are uploaded, the manifest last
    (:func:`~elasticnet_dist.outputs.commit_to_store` says what holds there)."""
    cfg.require(config, "input.path", "input.label", "output.dir")
    config = _local_outputs(config)
    out = config["output"]
    folder = out["dir"]
    store = output_storage_options(config)
    target = join_location(folder, MANIFEST_NAME)
    if is_store_url(folder):
        if out["mlflow"]:
            raise ConfigError("output.mlflow logs the files of a local output.dir; with "
                              "output.dir %s on a store, write locally for MLflow" % folder)
        prepare_store_folder(folder, "output.dir", store)
    else:
        prepare_folder(folder)
    if out["mlflow"]:
        from .tracking import require_mlflow

        require_mlflow()  # before the fit, not after it
    # before the fit: a bad manifest costs no fit
    baseline = _read_manifest_option(config, "drift", "baseline")
    warm_start = _read_manifest_option(config, "search", "warm_start")
    config = resolve_engine(config, config["input"]["path"],
                            config["input"]["storage_options"] or None)
    with folder_lock(folder, "output.dir %s" % folder, store):
        document = _fit_and_describe(config, baseline, warm_start)
        report_files = write_outputs(folder, document, report=out["report"],
                                     storage_options=store)
        if out["checkpoint_dir"]:
            checkpoint.clear(out["checkpoint_dir"], config["input"]["storage_options"] or None)
    if out["mlflow"]:
        from .tracking import log_selection

        log_selection(document, [target, *report_files], out["mlflow"],
                      out["mlflow_experiment"], folder)
    drift = document.get("drift")
    if drift is not None and drift["exceeded"]:
        raise DriftExceededError(
            "the selection drifted: churn %.3f against %s exceeds drift.max_churn %g; %s is "
            "written with its drift section (elasticnet-dist diff shows the change)"
            % (drift["churn"], drift["baseline"]["path"], drift["max_churn"], target))
    return target, document


def output_storage_options(config):
    """fsspec options for the outputs: ``output.storage_options``, else the input's."""
    options = config["output"]["storage_options"]
    return (config["input"]["storage_options"] if options is None else options) or None


def _read_manifest_option(config, section, key):
    """The manifest ``section.key`` names (checked against the schema), or None.

    A ``search.warm_start`` manifest that does not exist yet (a schedule's first
    day) is a warning and a search of the whole grid: the warm start changes the
    cost of the search, never its answer. A ``drift.baseline`` must exist."""
    path = config[section][key]
    if not path:
        return None
    if key == "warm_start" and not _exists(path, output_storage_options(config)):
        log.warning("search.warm_start: there is no manifest at %s yet (a first run?); "
                    "searching the whole grid", path)
        return None
    try:
        manifest = read_manifest(path, output_storage_options(config))
    except ManifestError as exc:
        raise ManifestError("%s.%s: %s" % (section, key, exc)) from None
    loss = manifest.document["target"]["loss"]
    if key == "warm_start" and not same_loss(loss, config["model"]["loss"]):
        raise ConfigError("search.warm_start: %s was fitted with loss %r, this run has "
                          "model.loss %r; start from a manifest of the same loss"
                          % (path, loss, config["model"]["loss"]))
    return manifest


def _exists(path, storage_options=None):
    """Whether the file ``path`` (local or an fsspec URL) exists; True when the store
    cannot tell (reading it then reports why)."""
    import fsspec

    try:
        fs, target = fsspec.core.url_to_fs(path, **(storage_options or {}))
        return fs.exists(target)
    except Exception:  # noqa: BLE001 - the read that follows names the fault
        return True


def _local_outputs(config):
    """``config`` with its output folders as absolute local paths or store URLs,
    each checked apart from the input (an output inside the table would be read as
    part of it next time)."""
    out = dict(config["output"])
    source = {"input.path": config["input"]["path"]}
    for key in ("dir", "checkpoint_dir", "stats_store"):
        if out[key] is not None:
            what = "output." + key
            location = output_location(out[key], what)
            check_apart(location, source, what)
            if out[key].startswith("file://") or is_store_url(location):
                out[key] = location
    return {**config, "output": out}


def _fit_and_describe(config, baseline=None, warm_start=None):
    """Fit as configured (a search from the ``warm_start`` manifest if given); the
    manifest's document (checked against its schema), with its ``drift`` section
    against the ``baseline`` manifest when there is one."""
    inp, out = config["input"], config["output"]
    t0 = time.perf_counter()
    engine = open_engine(config)
    started = time.perf_counter() - t0
    try:
        est = make_estimator(config, engine, warm_start)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(inp["path"], label=inp["label"], weight=inp["weight"], offset=inp["offset"],
                    features=inp["features"], exclude=inp["exclude"] or None,
                    keys=inp["keys"] or None, storage_options=inp["storage_options"] or None,
                    vector=inp["vector"], max_levels=inp["max_levels"],
                    **({"fold_column": inp["fold_column"]} if inp["fold_column"] else {}))
        for w in caught:
            log.warning("%s", w.message)
    finally:
        engine.close()
    est.fit_report_["engine_start_s"] = started  # the estimator was handed a running engine
    document = build_manifest(est, cfg.redacted(config), engine_address=engine_address(config))
    if baseline is not None:
        options = config["drift"]
        document["drift"] = compare(baseline.document, document,
                                    baseline_path=scrub(baseline.path),
                                    coef_change=options["coef_change"],
                                    max_churn=options["max_churn"])
        for line in text_lines(document["drift"]):
            log.info("drift from the baseline: %s", line)
    check_manifest(document, "the new manifest")
    n_selected = len(document["selected"])
    categorical = getattr(est, "categorical_columns_", ())
    n_levels = sum(len(c.levels) for c in categorical)
    log.info("selected %d of %d features%s (alpha=%.6g, l1_ratio=%g, %s); %s",
             n_selected, len(est.feature_names_in_) - n_levels + len(categorical),
             " (%d categorical, with %d levels)" % (len(categorical), n_levels)
             if categorical else "", document["penalty"]["alpha"],
             document["penalty"]["l1_ratio"], document["selection"]["method"],
             count(document["solver"]["data_passes"], "data pass"))
    stability = document.get("stability")
    if stability is not None:
        unstable = sum(1 for d in document["dropped"] if d["reason"] == "unstable")
        log.info("stability over %d half-samples: %d of the selected features chosen in at "
                 "least 90%% of them%s", stability["n_subsamples"],
                 sum(1 for f in document["selected"] if f["stability"] >= 0.9),
                 "; %d dropped below min_stability %g" % (unstable, stability["min_stability"])
                 if stability["min_stability"] is not None else "")
    if not est.converged_:
        message = ("the chosen fit did not converge: duality gap %.3e after %d data passes; "
                   "raise model.max_iter or model.tol"
                   % (est.dual_gap_, document["solver"]["data_passes"]))
        if out["on_not_converged"] == "fail":
            raise NotConvergedError(message + " (output.on_not_converged: fail; nothing written)")
        log.warning("%s (output.on_not_converged: warn; the manifest says converged: false)",
                    message)
    return document


def write_outputs(folder, document, *, report=True, storage_options=None):
    """Write ``manifest.json`` and (with ``report``) its report into ``folder`` as one
    step: everything is written into a staging folder inside it, then moved into
    place, the manifest last, with SIGINT/SIGTERM held off (:func:`commit_files`);
    report files of an earlier run that this run does not write are removed then,
    so the folder never pairs a manifest with another run's report. A folder on a
    store (a URL) is staged in a local temporary folder and uploaded the same way
    (:func:`commit_to_store`). Returns the report files written (the page first)."""
    from .report import REPORT_FILES, REPORT_NAME

    on_store = is_store_url(folder)
    staging = tempfile.mkdtemp(prefix=".staging.", dir=None if on_store else folder)

    def commit(names):
        if on_store:
            commit_to_store(staging, folder, names, stale=REPORT_FILES,
                            storage_options=storage_options)
        else:
            commit_files(staging, folder, names, stale=REPORT_FILES)

    try:
        names = _draw_report(staging, document) if report else []
        write_atomic(os.path.join(staging, MANIFEST_NAME), dumps(document))
        with signals_deferred():
            try:
                commit(names + [MANIFEST_NAME])
            except OutputWriteError as exc:
                if not names:
                    raise
                # a report file could not be put in place: the manifest goes alone, and
                # no report file of this run or an earlier one stays beside it
                log.warning("report not written (%s); the manifest is; rebuild it with "
                            "elasticnet-dist report", exc)
                commit([MANIFEST_NAME])
                names = []
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    target = join_location(folder, MANIFEST_NAME)
    log.info("manifest written to %s", target)
    if names:
        log.info("report written to %s (%s)", join_location(folder, REPORT_NAME),
                 count(len(names) - 1, "figure"))
    pages = [n for n in names if n == REPORT_NAME] + [n for n in names if n != REPORT_NAME]
    return [join_location(folder, n) for n in pages]


def _draw_report(staging, document):
    """The report's files drawn into ``staging`` (names, the page last); none, with a
    log line, without matplotlib (the plot extra) or if drawing fails: the manifest
    is written all the same and ``elasticnet-dist report`` can rebuild the report."""
    from .report import draw_report, plotting_available

    if not plotting_available():
        log.info("report skipped: matplotlib is not installed "
                 "(pip install 'elasticnet_dist[plot]')")
        return []
    try:
        return draw_report(document, staging, manifest_name=MANIFEST_NAME)
    except Exception as exc:
        log.warning("report not written (%s: %s); the manifest is; rebuild it with "
                    "elasticnet-dist report", type(exc).__name__, exc)
        for name in os.listdir(staging):
            os.unlink(os.path.join(staging, name))
        return []


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
    """Check a manifest against its schema, that the report beside it (if any) was
    written by the same run, and, with ``input_path``, that the table still holds
    every reduced-schema column with its recorded type. Returns the
    :class:`~elasticnet_dist.manifest.Manifest`; raises otherwise."""
    manifest, table = _checked(manifest_path, input_path, storage_options)
    check_report_beside(manifest, storage_options)
    if table is not None:
        report_unseen(unseen_levels_of(manifest, table), table.uri)
    return manifest


def check_report_beside(manifest, storage_options=None):
    """A :class:`ManifestError` if a report file beside the manifest (in its local
    folder or store prefix) carries another run's id (a manifest and a report of
    different runs must never pass as one)."""
    run_id = manifest.document.get("run_id")
    if not run_id:
        return
    from .report import report_run_ids

    if is_store_url(manifest.path):
        folder = manifest.path.rsplit("/", 1)[0]
    else:
        folder = os.path.dirname(os.path.abspath(local_output_path(manifest.path,
                                                                   "the manifest")))
    for name, found in report_run_ids(folder, storage_options).items():
        if found != run_id:
            raise ManifestError(
                "%s beside %s was written by %s, the manifest by run %s: they do not belong "
                "together; rebuild the report with elasticnet-dist report %s"
                % (name, manifest.path, "run %s" % found if found else "an unknown run",
                   run_id, manifest.path))


def _checked(manifest_path, input_path, storage_options):
    """(manifest, the resolved table or None), both checked as :func:`validate` says."""
    manifest = read_manifest(manifest_path, storage_options)
    if input_path is None:
        return manifest, None
    from .io.table import check_file_schemas, open_table

    table = open_table(input_path, storage_options)
    check_table_matches(manifest, table.schema, table.uri)
    check_file_schemas(table, manifest.columns)
    return manifest, table


def unseen_levels_of(manifest, table):
    """The unseen levels of the manifest's categorical columns in ``table`` (a
    resolved table of pieces), read on this process: ``{column: (rows, examples)}``."""
    categorical = manifest.categorical
    if not categorical:
        return {}
    return merge_unseen(unseen_in(piece.read(list(categorical)), categorical)
                        for piece in table.pieces)


def apply(manifest_path, input_path, output, config, storage_options=None,
          output_storage_options=None):
    """Write ``input_path`` projected onto the manifest's ``reduced_schema`` as
    Parquet under ``output`` (a file per input piece, named after its input file
    (:func:`output_names`), rows in input order, Arrow types unchanged, and the marker
    :data:`~elasticnet_dist.outputs.APPLY_MARKER` saying what wrote it), each file
    written by a worker of the configured engine. The folder appears whole or not
    at all: the parts go to a sibling folder that is renamed into place at the end.

    ``output`` must lie apart from the input and the manifest (not equal to, inside
    or above either) and may replace only a folder an earlier ``apply`` wrote or an
    empty one: anything else is a :class:`ConfigError` naming both paths. Returns
    the number of rows written.

    ``output`` may be a store URL (``s3://bucket/reduced``, written with
    ``output_storage_options``, by default ``storage_options``): see
    :func:`_apply_to_store` for what holds there."""
    output = output_location(output, "--output")
    check_apart(output, {"--input": input_path, "--manifest": manifest_path}, "--output",
                replaces_whole=True)
    if is_store_url(output):
        return _apply_to_store(manifest_path, input_path, output, config, storage_options,
                               output_storage_options or storage_options)
    check_replaceable(output, "--output")
    manifest, table = _checked(manifest_path, input_path, storage_options)
    config = resolve_engine(config, input_path, table=table)
    parent = os.path.dirname(output)
    prepare_folder(parent, "the folder of --output")
    with sibling_lock(output, "--output %s" % output):
        check_replaceable(output, "--output")  # again, now that no other run can change it
        staging = os.path.join(parent, ".%s.%s.tmp" % (os.path.basename(output),
                                                       uuid.uuid4().hex))
        os.makedirs(staging)
        try:
            engine = open_engine(config)
            try:
                jobs = list(zip(output_names(table.pieces), table.pieces, strict=True))
                rows, unseen = _write_pieces(engine, manifest, jobs, staging)
            finally:
                engine.close()
            write_atomic(os.path.join(staging, APPLY_MARKER), json.dumps(
                _apply_marker(manifest, table, rows, [name for name, _ in jobs], unseen),
                indent=2) + "\n")
            replace_folder(staging, output)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return _applied(rows, manifest, manifest_path, output)


def _write_pieces(engine, manifest, jobs, folder, storage_options=None):
    """Each piece's reduced columns written under ``folder`` by the engine's workers;
    the rows of each, and the rows whose categorical values the manifest has no
    level for (reported, not fatal: such a row has zeros in every level)."""
    task = functools.partial(_write_piece, columns=manifest.columns, folder=folder,
                             storage_options=storage_options, vectors=manifest.vector_slots,
                             categorical=manifest.categorical)
    results = engine.map_jobs(task, jobs)
    unseen = merge_unseen(found for _, found in results)
    report_unseen(unseen, "the input of apply")
    return [rows for rows, _ in results], unseen


def merge_unseen(parts):
    """``{column: (rows, examples)}`` summed over pieces (:func:`unseen_in`)."""
    out = {}
    for found in parts:
        for column, (rows, examples) in found.items():
            total, seen = out.get(column, (0, []))
            out[column] = (total + rows, sorted(set(seen) | set(examples))[:10])
    return out


def unseen_in(frame, categorical):
    """``{column: (rows, up to 10 values)}``: the rows of ``frame`` (an Arrow table)
    whose value in a categorical column is not one of the manifest's levels."""
    from .io.categorical import unseen_levels

    out = {}
    for column, levels in categorical.items():
        count, examples = unseen_levels(frame.column(column), levels)
        if count:
            out[column] = (count, examples)
    return out


def report_unseen(unseen, where):
    """A warning per categorical column holding values the manifest has no level for."""
    for column, (rows, examples) in sorted(unseen.items()):
        log.warning("categorical column %r of %s holds %d row(s) with levels the manifest "
                    "does not know (e.g. %s): those rows have no level (zeros in every "
                    "level's feature)", column, where, rows, ", ".join(map(repr, examples)))


def _applied(rows, manifest, manifest_path, output):
    log.info("wrote %d rows x %d columns (the reduced schema of %s) to %s in %d files",
             sum(rows), len(manifest.columns), manifest_path, output, len(rows))
    return int(sum(rows))


def _apply_to_store(manifest_path, input_path, output, config, storage_options,
                    output_options):
    """``apply`` into a folder on a store. The workers write every file under a
    staging prefix beside ``output``; then the marker of the folder's earlier
    contents is removed, the files are copied into ``output`` (a copy inside the
    store), the objects of the earlier set that this one lacks are removed, and the
    new marker goes last.

    What holds: a reader who finds the marker finds every file it lists, whole; an
    ``output`` that holds other objects than an earlier ``apply``'s is refused, as
    on a local disk. What does not: the folder is not replaced in one step (between
    the marker's removal and its return a reader sees files of both sets, and no
    marker), and a crash in the middle leaves a folder without marker (which a
    rerun replaces) and the staging prefix (named ``.<name>.<id>.tmp``)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(output, **(output_options or {}))
    _check_replaceable_on_store(fs, root, output)
    manifest, table = _checked(manifest_path, input_path, storage_options)
    config = resolve_engine(config, input_path, table=table)
    parent, name = posixpath.split(root)
    prepare_store_folder(output.rsplit("/", 1)[0], "the folder of --output", output_options)
    with sibling_lock(output, "--output %s" % output, output_options):
        _check_replaceable_on_store(fs, root, output)
        staging = posixpath.join(parent, ".%s.%s.tmp" % (name, uuid.uuid4().hex))
        staging_url = "%s://%s" % (output.split("://", 1)[0], staging)
        try:
            engine = open_engine(config)
            try:
                jobs = list(zip(output_names(table.pieces), table.pieces, strict=True))
                rows, unseen = _write_pieces(engine, manifest, jobs, staging_url, output_options)
            finally:
                engine.close()
            names = [n for n, _ in jobs]
            marker = json.dumps(_apply_marker(manifest, table, rows, names, unseen),
                                indent=2) + "\n"
            with signals_deferred():
                fs.invalidate_cache()  # the workers wrote the staging prefix
                old = set(fs.ls(root, detail=False)) if fs.exists(root) else set()
                if posixpath.join(root, APPLY_MARKER) in old:
                    fs.rm(posixpath.join(root, APPLY_MARKER))
                for n in names:
                    fs.copy(posixpath.join(staging, n), posixpath.join(root, n))
                new = {posixpath.join(root, n) for n in names}
                for path in sorted(old - new - {posixpath.join(root, APPLY_MARKER)}):
                    fs.rm(path)
                write_atomic(join_location(output, APPLY_MARKER), marker,
                             storage_options=output_options)
        except OSError as exc:
            raise OutputWriteError("cannot write --output %s: %s" % (output, exc)) from None
        finally:
            with contextlib.suppress(OSError):
                fs.invalidate_cache()
                if fs.exists(staging):
                    fs.rm(staging, recursive=True)
    return _applied(rows, manifest, manifest_path, output)


def _check_replaceable_on_store(fs, root, output):
    """As :func:`~elasticnet_dist.outputs.check_replaceable`, for a store prefix."""
    fs.invalidate_cache()  # listings are cached, and other processes wrote here
    if fs.isfile(root):
        raise ConfigError("--output %s is an existing object; it is never replaced: choose "
                          "a folder path that does not exist" % output)
    if not fs.exists(root):
        return
    entries = [posixpath.basename(p) for p in fs.ls(root, detail=False)]
    if entries and APPLY_MARKER not in entries:
        raise ConfigError("--output %s is a folder that elasticnet-dist apply did not write "
                          "(no %s; it holds %d entries, e.g. %r); it is never replaced: "
                          "choose a new or empty folder"
                          % (output, APPLY_MARKER, len(entries), sorted(entries)[0]))


def _apply_marker(manifest, table, rows, names, unseen=None):
    """What an ``apply`` output folder records about itself (and what licenses a
    later ``apply`` to replace it), with the rows of each categorical column whose
    level the manifest does not know."""
    from . import __version__

    return {"tool": {"name": "elasticnet_dist", "version": __version__},
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "manifest": os.path.abspath(manifest.path) if "://" not in manifest.path
            else manifest.path, "manifest_run_id": manifest.document.get("run_id"),
            "input": table.uri, "columns": manifest.columns, "rows": int(sum(rows)),
            "files": names,
            "unseen_levels": {column: {"rows": n, "examples": examples}
                              for column, (n, examples) in sorted((unseen or {}).items())}}


def output_names(pieces):
    """The file name ``apply`` writes for each piece: the input file's own (its path
    below the table's folder, ``/`` as ``__``, so hive folders do not become
    partitions again), with ``.rgA-B`` for a piece of row groups A..B of a large
    file; ``part-NNNNN.parquet`` for a piece of a DataFrame. Unique in order."""
    names, seen = [], set()
    for index, piece in enumerate(pieces):
        source = getattr(piece, "source", "") or ""
        if not source or source.startswith(".."):
            name = "part-%05d.parquet" % index
        else:
            stem = source.replace("/", "__")
            stem = stem[:-len(".parquet")] if stem.endswith(".parquet") else stem
            groups = getattr(piece, "row_groups", None)
            if groups is not None:
                stem += ".rg%d-%d" % (groups[0], groups[-1])
            name = stem + ".parquet"
        if name in seen or name.startswith((".", "_")):
            name = "part-%05d-%s" % (index, name.lstrip("._"))
        seen.add(name)
        names.append(name)
    return names


def _write_piece(job, columns, folder, storage_options=None, vectors=None, categorical=None):
    """One piece's reduced columns as a Parquet file; a column of vectors keeps the
    selected slots only (``vectors``: name -> slots), as Spark's ``VectorSlicer``.
    Returns the rows written and the unseen levels of the ``categorical`` columns
    (name -> levels; :func:`unseen_in`)."""
    import pyarrow.parquet as pq

    from .sparse import slice_vectors

    name, piece = job
    frame = piece.read(columns)
    unseen = unseen_in(frame, categorical or {})
    for column, slots in (vectors or {}).items():
        i = frame.schema.get_field_index(column)
        frame = frame.set_column(i, frame.schema.field(i),
                                 slice_vectors(frame.column(i), slots))
    if is_store_url(folder):
        import fsspec

        with fsspec.open(join_location(folder, name), "wb", **(storage_options or {})) as f:
            pq.write_table(frame, f)
    else:
        pq.write_table(frame, os.path.join(folder, name))
    return frame.num_rows, unseen


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
