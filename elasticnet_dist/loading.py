"""Load a table onto an engine: the one place where io and the engines meet.

:func:`load_table` is the whole input side of a fit. It reads schemas and
footers on the driver, decides the column roles (:mod:`elasticnet_dist.io`),
has the engine decode and cache every piece on its workers, and checks the
block summaries, so that every problem with the input is reported, with the
column, the count and a file, before any solver runs. io knows no engine and
the engines know no table plan; this module sits above both.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace

from ._text import count
from .io.blocks import BlockDecoder
from .io.checks import LoadReport, impute_means, needs_imputation
from .io.columns import ColumnPlan
from .io.load import (absolute_uri, check_folds, check_summaries, class_strata, drop_unusable,
                      materialize, plan_load)
from .io.table import TableInput
from .losses import get_loss

log = logging.getLogger("elasticnet_dist")


@dataclass
class LoadedTable:
    """A table cached on an engine, ready for passes (the solvers see the engine
    through :class:`~elasticnet_dist.sources.EngineSource`)."""

    engine: object
    table: TableInput
    plan: ColumnPlan
    report: LoadReport
    decoder: BlockDecoder
    seconds: float

    def describe(self):
        out = self.engine.describe()
        out.update(stratified_folds=self.decoder.strata is not None)
        out.update(input=self.table.uri, rows_read=self.report.n_rows_read,
                   rows_dropped=self.report.rows_dropped,
                   values_imputed=self.report.values_imputed, nan_policy=self.report.nan_policy)
        return out

    def provenance(self):
        """Where the rows came from, for a manifest: the URI, counts, the schema's
        fingerprint (SHA-256 of the ordered ``name:type`` lines), every file with its
        size and its footer's row count, and the Arrow type of every column."""
        schema = self.table.schema
        types = [(name, str(t)) for name, t in zip(schema.names, schema.types, strict=True)]
        digest = hashlib.sha256("\n".join("%s:%s" % nt for nt in types).encode()).hexdigest()
        return {"uri": self.table.uri, "uri_absolute": absolute_uri(self.table),
                "kind": self.table.kind,
                "rows_read": int(self.report.n_rows_read), "rows_used": int(self.report.n_rows),
                "rows_dropped": int(self.report.rows_dropped),
                "values_imputed": int(self.report.values_imputed),
                "nan_policy": self.report.nan_policy, "n_columns": len(types),
                "schema_fingerprint": "sha256:" + digest,
                "files": [dict(f) for f in self.table.files],
                "column_types": dict(types),
                **({} if self.engine.stats_store is None
                   else {"stats_store": self.engine.stats_store.describe()})}


def load_table(source, engine, *, label, weight=None, features=None, exclude=None, keys=None,
               loss="squared", dtype="float64", nan_policy="error", storage_options=None,
               n_folds=0, fold_column=None, fold_seed=0, stratify=False, offset=None,
               stats_store=None, vector=None, max_levels=0):
    """Resolve ``source``, cache it on ``engine`` and check it; a :class:`LoadedTable`.

    ``nan_policy``: ``"error"`` (default) stops at the first column with a
    missing value (null, NaN or inf); ``"drop_rows"`` drops every row with one;
    ``"impute_mean"`` replaces missing feature values by the column's mean over
    the other rows (and drops rows whose label, weight or offset is missing). The
    report records what was dropped or imputed. ``offset`` names a column added
    to every row's linear predictor (``loss="poisson"``: the log of an exposure).

    ``n_folds`` > 0 loads for cross-validation: every row gets a fold from
    ``fold_column`` if given (it is then not a feature), else from a hash of
    the ``keys`` columns, else from its file and row position
    (:mod:`elasticnet_dist.folds`); each block keeps its rows sorted by fold.
    ``stratify`` (a 0/1 label, hashed folds, at most STRATIFY_MAX_ROWS rows) cuts
    each class's hashes into folds of equal size: the table is decoded twice, the
    first time to learn where each class's folds begin.

    ``stats_store`` (a :class:`~elasticnet_dist.stats_store.StatsStore`, for a
    table of files): pieces seen by an earlier run load from it instead of
    being read (:mod:`elasticnet_dist.stats_store`).

    ``vector`` (a :class:`~elasticnet_dist.sparse.VectorColumn`): the features are
    the slots of that column of Spark ML vectors, and blocks are CSR matrices.

    ``max_levels`` > 0: string columns with at most that many distinct values are
    categorical features, one-hot encoded per level (:mod:`~.io.categorical`).
    """
    t0 = time.perf_counter()
    load = plan_load(source, label=label, weight=weight, features=features, exclude=exclude,
                     keys=keys, loss=loss, dtype=dtype, nan_policy=nan_policy,
                     storage_options=storage_options, n_folds=n_folds,
                     fold_column=fold_column, fold_seed=fold_seed, stratify=stratify,
                     offset=offset, vector=vector, max_levels=max_levels,
                     map_jobs=engine.map_jobs)
    table, plan, decoder = load.table, load.plan, load.decoder
    engine.stats_store = None
    if stats_store is not None and not get_loss(loss).quadratic:
        log.info("statistics store: not used for the %s loss (its fits pass over the rows "
                 "many times; the store keeps the one-pass route's sums)", loss)
    elif stats_store is not None and table.kind == "files":
        engine.stats_store = stats_store
        decoder = stats_store.attach(decoder, table.pieces)
    elif stats_store is not None:
        log.info("statistics store: not used for a %s table (it keeps Parquet pieces)",
                 table.kind)
    summaries = _decode(engine, table, decoder)
    usable, empty = drop_unusable(summaries, plan, table, dtype)
    if usable is not plan:  # rare: decode again without the unusable columns
        plan, decoder = usable, replace(decoder, features=usable.features)
        summaries = _decode(engine, table, decoder)
    report = check_summaries(summaries, load, plan, empty)
    if load.stratify:  # decode again with each class's folds cut to equal sizes
        decoder = replace(decoder, collect_hashes=False,
                          strata=class_strata(summaries, n_folds))
        summaries = _decode(engine, table, decoder)
    if n_folds:
        check_folds(summaries, n_folds, table)
    if nan_policy == "impute_mean" and needs_imputation(summaries):
        decoder = replace(decoder, fill=impute_means(summaries))
        summaries = _decode(engine, table, decoder)
        report = check_summaries(summaries, load, plan, empty)
    seconds = time.perf_counter() - t0
    log.info("loaded %d rows (%d dropped, %d values imputed) into %s, %.1f MB %s, on %s "
             "with %s in %.2f s", report.n_rows, report.rows_dropped,
             report.values_imputed, count(engine.n_partitions, "block"),
             engine.bytes_decoded / 1e6,
             "decoded again in every pass" if engine.streaming else "cached",
             engine.name, count(engine.n_workers(), "worker"), seconds)
    return LoadedTable(engine, table, plan, report, decoder, seconds)


def _decode(engine, table, decoder):
    """Every piece decoded (and cached) by the engine; their summaries in order."""
    if table.kind in ("files", "memory"):
        summaries = engine.load(table.pieces, decoder)
        if engine.stats_store is not None:
            engine.stats_store.record_context(decoder, summaries)
        return summaries
    if engine.frame_kind == table.kind:
        return engine.load_frame(table.frame, decoder)
    return engine.load(materialize(table, decoder.columns), decoder)
