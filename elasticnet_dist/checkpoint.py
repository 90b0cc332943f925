"""Checkpoints: a rerun after the driver was killed resumes where it stopped.

With ``checkpoint_dir`` set, a fit leaves small files behind as it goes
(each written to a temporary name and renamed into place, so a file is
either whole or absent):

- ``fingerprint.json``: what the files belong to (:func:`fit_fingerprint`);
- ``pass-000001.npz``, ...: the statistics returned by each data pass, with
  a digest of the request that asked for them;
- ``path-l0-k-1-a000.npz``, ...: each solved point of the driver-side paths
  of the one-pass cross-validation route (l1_ratio index, fold (-1 the full
  data), alpha index).

A rerun with the same fingerprint replays the logged passes (no data pass:
the solvers receive the very same numbers, in the same order, so they take
the very same steps) and restores the solved path points, then continues
live. Everything a solver computes is a deterministic function of those
numbers, hence the rerun's manifest is the uninterrupted run's. A checkpoint
whose fingerprint differs (another input, other data, another configuration
or version) is ignored with a log line and overwritten; a logged pass whose
request digest differs from the rerun's ends the replay there.

The fingerprint covers the content of the data through the per-block
summaries the load computes anyway (row counts, column sums, first rows,
label counts, fold sizes): a changed value changes a column sum.

``checkpoint_dir`` may be a local folder or an fsspec URL (``s3://bucket/ckpt``,
opened with the fit's ``storage_options``): every file is written whole
(:func:`~elasticnet_dist.outputs.write_atomic`), which on a store means an
object under a temporary key moved onto its name; nothing else changes.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import posixpath
import re
import threading
import zipfile

import numpy as np

from ._text import count
from .outputs import is_store_url, join_location, local_output_path, write_atomic
from .sources import SourceBase

log = logging.getLogger("elasticnet_dist")

FINGERPRINT_NAME = "fingerprint.json"
_PASS = "pass-%06d.npz"
_POINT = "path-l%d-k%d-a%03d.npz"
#: What reading a damaged checkpoint file raises (a torn write, a full disk, an edit).
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_TEMP = ".*.tmp"  # a write that a kill interrupted (outputs.write_atomic)
_OURS = ("pass-*.npz", "path-*.npz", FINGERPRINT_NAME, _TEMP)
#: Passes whose statistics take fewer bytes are logged compressed.
COMPRESS_BELOW = 32 * 2**20
#: Estimator parameters that do not change the numbers (where it runs, how it logs).
NEUTRAL_PARAMS = {"engine", "cluster", "verbose", "checkpoint_dir", "stats_store"}


def fit_fingerprint(estimator, loaded):
    """SHA-256 of everything a fit's numbers depend on: package version, the
    estimator's class and parameters (not where it runs), the columns and
    roles, and the content of the loaded table (its block summaries)."""
    from . import __version__

    params = {k: v for k, v in estimator.get_params().items() if k not in NEUTRAL_PARAMS}
    h = hashlib.sha256()
    head = {"version": __version__, "estimator": type(estimator).__name__,
            "params": params, "plan": dataclasses.asdict(loaded.plan),
            "decoder": {k: v for k, v in dataclasses.asdict(loaded.decoder).items()
                        if k != "store"},  # a statistics store changes no number
            "uri": loaded.table.uri,
            "schema": [str(f) for f in loaded.table.schema]}
    h.update(json.dumps(head, sort_keys=True, default=repr).encode())
    for s in loaded.engine.summaries:
        h.update(np.array([s.n_rows, s.n_rows_read, s.label_zeros, s.label_ones, s.first_y,
                           s.weight_sum, s.rows_dropped, s.values_imputed], dtype=np.float64))
        for arr in (s.finite_sum_x, s.nonfinite_x, s.first_x, s.fold_rows):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def digest(value):
    """SHA-256 of ``value``: dataclasses field by field, sequences item by item,
    arrays by their bytes (``repr`` would elide the middle of a long one), the rest
    by ``repr`` (exact for floats). Keys a :class:`~elasticnet_dist.passes.PassRequest`
    here and the statistics store's entries (:mod:`elasticnet_dist.stats_store`)."""
    h = hashlib.sha256()

    def feed(value):
        if isinstance(value, np.ndarray):
            h.update(("%s%s" % (value.dtype, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                h.update(f.name.encode())
                feed(getattr(value, f.name))
        elif isinstance(value, (tuple, list)):
            h.update(b"[%d" % len(value))
            for item in value:
                feed(item)
        else:
            h.update(repr(value).encode())

    feed(value)
    return h.hexdigest()


class Checkpoint:
    """One checkpoint folder, tied to one fit's fingerprint."""

    def __init__(self, directory, fingerprint, storage_options=None):
        self.directory, self._fs, self._root = _location(directory, storage_options)
        self.storage_options = storage_options
        self.fingerprint = fingerprint
        self.replayed = 0      # data passes answered from the log
        self.restored = 0      # path points read back
        self._lock = threading.Lock()  # paths are read back from the driver's threads
        try:
            self._fs.makedirs(self._root, exist_ok=True)
        except OSError as exc:
            from .errors import ConfigError

            raise ConfigError("cannot create checkpoint_dir %s: %s"
                              % (self.directory, exc.strerror or exc)) from None
        for stale in self._files(_TEMP):
            self._fs.rm(stale)
        found = self._stored_fingerprint()
        if found is None:
            self._clear_files()
            log.info("checkpoint %s: nothing to resume, starting afresh", self.directory)
        elif found != fingerprint:
            self._clear_files()
            log.info("checkpoint %s belongs to another input or configuration (fingerprint "
                     "%s..., this run %s...): ignored, starting afresh", self.directory,
                     found[:12], fingerprint[:12])
        else:
            log.info("checkpoint %s: resuming (%s and %s saved)", self.directory,
                     count(len(self._files("pass-*.npz")), "data pass"),
                     count(len(self._files("path-*.npz")), "path point"))
        self._write(FINGERPRINT_NAME, json.dumps({"fingerprint": fingerprint}), sync=False)

    def _path(self, name):
        """The file system path of the checkpoint file ``name``."""
        return posixpath.join(self._root, name)

    def _write(self, name, data, sync=True):
        write_atomic(join_location(self.directory, name), data, sync=sync,
                     storage_options=self.storage_options)

    def _open(self, path):
        return self._fs.open(path, "rb")

    # ---- data passes ------------------------------------------------------------------
    def source(self, source):
        """``source`` with every pass logged here (and replayed when logged)."""
        return CheckpointedSource(source, self)

    def load_pass(self, number, digest):
        """The logged statistics of pass ``number`` if it answered ``digest``, else None
        (and every later pass is dropped: the rerun took another way)."""
        path = self._path(_PASS % number)
        if not self._fs.exists(path):
            return None
        try:
            with self._open(path) as f, np.load(f) as data:
                if str(data["__request__"]) != digest:
                    log.warning("checkpoint pass %d was made for another request; replay "
                                "ends there", number)
                    self._drop_from("pass-*.npz", number)
                    return None
                stats = {key: data[key][()] if data[key].ndim == 0 else data[key]
                         for key in data.files if key != "__request__"}
        except UNREADABLE as exc:
            log.warning("checkpoint file %s is unreadable (%s: %s); replay ends there and the "
                        "fit goes on afresh from that pass", path, type(exc).__name__, exc)
            self._drop_from("pass-*.npz", number)
            return None
        self.replayed += 1
        return stats

    def _drop_from(self, pattern, number):
        """Remove the files of ``pattern`` numbered ``number`` and later."""
        for stale in self._files(pattern):
            if _number(stale) >= number:
                self._fs.rm(stale)

    def save_pass(self, number, digest, stats):
        """Log the statistics of pass ``number`` (fsync'ed: passes are the costly part).
        Compressed unless large (the AUC histograms are mostly zeros; zlib on the
        Gram matrices of the one-pass route would take seconds for nothing)."""
        size = sum(np.asarray(value).nbytes for value in stats.values())
        save = np.savez_compressed if size < COMPRESS_BELOW else np.savez
        self._write(_PASS % number, lambda f: save(f, __request__=np.array(digest), **stats))

    # ---- path points (one-pass route) -----------------------------------------------------
    def saved_path(self, l1_index, fold):
        """The :class:`SavedPath` of one path (None when no point was saved)."""
        points, states = [], []
        while True:
            path = self._path(_POINT % (l1_index, fold, len(points)))
            if not self._fs.exists(path):
                break
            try:
                with self._open(path) as f, np.load(f) as data:
                    point, state = _point_from(data)
            except UNREADABLE as exc:
                log.warning("checkpoint file %s is unreadable (%s: %s); this path resumes "
                            "from the point before it", path, type(exc).__name__, exc)
                for stale in self._files("path-l%d-k%d-a*.npz" % (l1_index, fold)):
                    if _number(stale) >= len(points):
                        self._fs.rm(stale)
                break
            points.append(point)
            states.append(state)
        if not points:
            return None
        with self._lock:
            self.restored += len(points)
        return SavedPath(points, **states[-1])

    def point_saver(self, l1_index, fold):
        """A callback ``save(index, point, state)`` writing one path point."""
        def save(index, point, state):
            # not fsynced: a point lost in a crash is solved again (same bits)
            self._write(_POINT % (l1_index, fold, index),
                        lambda f: np.savez(f, **_point_arrays(point, state)), sync=False)
        return save

    # ---- housekeeping ---------------------------------------------------------------------
    def clear(self):
        """Remove this checkpoint's files (after the result was written)."""
        clear(self.directory, self.storage_options)

    def summary(self):
        return "%s replayed, %s restored" % (count(self.replayed, "data pass"),
                                             count(self.restored, "path point"))

    def _stored_fingerprint(self):
        try:
            with self._open(self._path(FINGERPRINT_NAME)) as f:
                return json.load(f).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            return None

    def _files(self, pattern):
        return _files(self._fs, self._root, pattern)

    def _clear_files(self):
        _remove_ours(self._fs, self._root)


def _location(directory, storage_options):
    """(the folder as given or as an absolute path, its fsspec file system, its path
    there) for a local folder or a store URL."""
    import fsspec

    text = os.fspath(directory)
    location = text.rstrip("/") if is_store_url(text) else local_output_path(
        text, "checkpoint_dir")
    fs, root = fsspec.core.url_to_fs(location, **(storage_options or {}))
    return location, fs, root


def clear(directory, storage_options=None):
    """Remove the checkpoint files in ``directory`` (nothing else), e.g. once the
    manifest they led to is written."""
    _, fs, root = _location(directory, storage_options)
    if _remove_ours(fs, root):
        log.info("checkpoint %s cleared", directory)


def _files(fs, root, pattern):
    """The paths of the files in ``root`` whose names match ``pattern``, sorted."""
    try:
        names = fs.ls(root, detail=False, refresh=True)
    except FileNotFoundError:
        return []
    except TypeError:  # a file system without the refresh option
        names = fs.ls(root, detail=False)
    return sorted(p for p in names if fnmatch.fnmatchcase(posixpath.basename(p), pattern))


def _remove_ours(fs, root):
    removed = 0
    for pattern in _OURS:
        for path in _files(fs, root, pattern):
            fs.rm(path)
            removed += 1
    return removed


class CheckpointedSource(SourceBase):
    """A source whose passes are logged to (and replayed from) a :class:`Checkpoint`,
    and whose path solvers save their points there (``checkpoint``).

    ``n_passes`` counts replayed passes too, so the fit reports the same count
    as an uninterrupted run; the inner source's counter holds the passes made."""

    def __init__(self, source, checkpoint):
        self.inner = source
        self.checkpoint = checkpoint
        self.n_passes = source.n_passes
        self.n_rows, self.n_features = source.n_rows, source.n_features
        self.solve_tasks, self.host_objects = source.solve_tasks, source.host_objects
        self.pass_overhead, self.cores = source.pass_overhead, source.cores
        self.density = source.density
        self.gathered_overhead = source.gathered_overhead
        self._replaying = True

    @property
    def gather_bytes(self):
        return self.inner.gather_bytes

    def gathered(self):
        """The inner source gathered into this process, its passes still logged here
        (the route, and so the passes, are those of a run without a checkpoint)."""
        gathered = CheckpointedSource(self.inner.gathered(), self.checkpoint)
        gathered.n_passes, gathered._replaying = self.n_passes, self._replaying
        return gathered

    def run_pass(self, request):
        number = self.n_passes + 1
        key = digest(request)
        stats = self.checkpoint.load_pass(number, key) if self._replaying else None
        if stats is None:
            self._replaying = False
            stats = self.inner.run_pass(request)
            self.checkpoint.save_pass(number, key, stats)
        self.n_passes = number
        return stats

    def reference_row(self):
        return self.inner.reference_row()

    def task_memory_limit(self):
        return self.inner.task_memory_limit()


@dataclasses.dataclass
class SavedPath:
    """The solved points of a path read back, and what its next point needs:
    whether the last point left an evaluation (``has_final``), the deviance
    ratio seen last, whether the path ended there, the cached Gram columns."""

    points: list
    has_final: bool
    ratio_prev: float
    stopped: bool
    cache_idx: np.ndarray
    solved: int = 0    # points solved up to the last one, a coarse grid's cut steps included


def _point_arrays(point, state):
    support = np.flatnonzero(point.u)
    return {"alpha": point.alpha, "p": point.u.size, "support": support,
            "values": point.u[support], "intercept": point.intercept, "gap": point.gap,
            "tol": point.tol, "converged": point.converged, "n_iter": point.n_iter,
            "n_passes": point.n_passes, "has_final": state["has_final"],
            "ratio_prev": np.nan if state["ratio_prev"] is None else state["ratio_prev"],
            "stopped": state["stopped"], "cache_idx": np.asarray(state["cache_idx"]),
            "solved": int(state.get("solved", 0))}


def _point_from(data):
    from .solvers.path import PathPoint

    u = np.zeros(int(data["p"]))
    u[data["support"]] = data["values"]
    point = PathPoint(float(data["alpha"]), u, float(data["intercept"]), float(data["gap"]),
                      float(data["tol"]), bool(data["converged"]), int(data["n_iter"]),
                      int(data["n_passes"]))
    ratio = float(data["ratio_prev"])
    state = {"has_final": bool(data["has_final"]),
             "ratio_prev": None if np.isnan(ratio) else ratio,
             "stopped": bool(data["stopped"]), "cache_idx": data["cache_idx"].astype(np.intp),
             "solved": int(data["solved"]) if "solved" in data.files else 0}
    return point, state


def _number(path):
    return int(re.search(r"(\d+)\.npz$", path).group(1))
