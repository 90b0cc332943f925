"""Where the stage writes, and how: safe output paths, one atomic writer, a lock
per output, and a commit step that signals cannot cut in two.

Rules every command follows (``select``, ``apply``, ``report``, checkpoints):

- ``select``'s output folder, ``apply``'s output and checkpoints may be local
  paths or any fsspec URL (``s3://``, ``gs://``, ``abfs://``, ...;
  :func:`output_location`); ``report --output`` is a local path (a URL there is a
  :class:`~elasticnet_dist.errors.ConfigError`); ``file://`` is read as the local
  path it names;
- an output never overlaps an input: equal to, inside or (for a folder that is
  replaced whole) above the table or the manifest being read is refused, naming
  both paths (:func:`check_apart`);
- ``apply`` replaces only a folder that an earlier ``apply`` wrote (it holds
  :data:`APPLY_MARKER`) or an empty one (:func:`check_replaceable`);
- one run at a time per output: :class:`OutputLock` holds an exclusive
  ``flock`` for the run and names the holder to a second run; on a store,
  :class:`StoreLock` creates a lock object only if none exists (a conditional
  write where the store has one);
- files appear whole (:func:`write_atomic`, the one writer of manifests, reports,
  checkpoints and ``apply``'s marker: a temporary file beside the target, fsynced,
  renamed; on an fsspec URL a temporary object moved onto the target, with the
  store's guarantees) and a set of files appears in one step that SIGINT/SIGTERM
  cannot interrupt (:func:`commit_files`: the signals are blocked for the few
  renames and delivered after; :func:`replace_folder` swaps ``apply``'s folder;
  :func:`commit_to_store` uploads a set with the certifying file last).
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import posixpath
import re
import shutil
import signal
import socket
import sys
import tempfile

from .errors import ConfigError, OutputLockedError, OutputWriteError

#: The file an ``apply`` output folder holds: what wrote it (and licenses replacing it).
APPLY_MARKER = "_elasticnet_dist_apply.json"
#: The lock file of an output folder (removed when the run ends).
LOCK_NAME = ".elasticnet_dist.lock"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_GLOB = re.compile(r"[*?\[]")


# ---- paths -------------------------------------------------------------------------------

def local_output_path(path, what) -> str:
    """``path`` as an absolute local path; a URL with a scheme other than ``file``
    is a :class:`ConfigError` naming ``what`` (nothing would reach the store)."""
    text = os.fspath(path)
    match = _SCHEME.match(text)
    if match:
        if match.group(1).lower() != "file":
            raise ConfigError("%s %s is a %s:// URL; this output must be a local path (only "
                              "select's output.dir, apply's --output and checkpoint_dir may "
                              "be on a store)" % (what, text, match.group(1)))
        text = text[len("file://"):] or "/"
    return os.path.abspath(text)


def is_store_url(path) -> bool:
    """Does ``path`` name an fsspec file system other than the local one?"""
    match = _SCHEME.match(os.fspath(path))
    return bool(match) and match.group(1).lower() != "file"


def output_location(path, what) -> str:
    """An output folder that may live on a store: the URL as given (without a
    trailing ``/``), or the absolute local path (:func:`local_output_path`)."""
    text = os.fspath(path)
    if is_store_url(text):
        scheme, rest = text.split("://", 1)
        if not rest.strip("/"):
            raise ConfigError("%s %s names no bucket or folder" % (what, text))
        return "%s://%s" % (scheme.lower(), rest.rstrip("/"))
    return local_output_path(text, what)


def join_location(folder, name) -> str:
    """``folder/name`` for a local folder or a store URL."""
    return posixpath.join(folder, name) if is_store_url(folder) else os.path.join(folder, name)


def local_input_path(path):
    """The local folder or file an input names (a glob: its fixed leading folder),
    or None for a URL: what an output must stay apart from."""
    text = os.fspath(path)
    match = _SCHEME.match(text)
    if match:
        if match.group(1).lower() != "file":
            return None
        text = text[len("file://"):] or "/"
    glob = _GLOB.search(text)
    if glob:
        text = os.path.dirname(text[:glob.start()]) or "."
    return os.path.abspath(text)


def check_apart(output, inputs, what, *, replaces_whole=False):
    """Refuse an ``output`` that is, or lies inside, an input path; with
    ``replaces_whole`` (the output folder is swapped away whole) also one that
    holds an input. ``inputs``: ``{option name: path or list of paths}``. An output
    on a store is compared with the inputs' URLs as text (same scheme and bucket)."""
    if is_store_url(output):
        return _check_apart_on_store(output, inputs, what, replaces_whole)
    out = os.path.realpath(output)
    for option, paths in inputs.items():
        for path in paths if isinstance(paths, (list, tuple)) else [paths]:
            local = local_input_path(path) if path is not None else None
            if local is None:
                continue
            real = os.path.realpath(local)
            if out == real:
                relation = "is"
            elif _inside(out, real):
                relation = "is inside"
            elif replaces_whole and _inside(real, out):
                relation = "holds"
            else:
                continue
            raise ConfigError("%s %s %s %s %s: an output must never overlap what is read; "
                              "choose another %s" % (what, output, relation, option, path, what))


def _check_apart_on_store(output, inputs, what, replaces_whole):
    out = output.rstrip("/")
    for option, paths in inputs.items():
        for path in paths if isinstance(paths, (list, tuple)) else [paths]:
            if path is None or not is_store_url(path):
                continue
            url = os.fspath(path)
            glob = _GLOB.search(url)
            url = (posixpath.dirname(url[:glob.start()]) if glob else url).rstrip("/")
            if out == url:
                relation = "is"
            elif out.startswith(url + "/"):
                relation = "is inside"
            elif replaces_whole and url.startswith(out + "/"):
                relation = "holds"
            else:
                continue
            raise ConfigError("%s %s %s %s %s: an output must never overlap what is read; "
                              "choose another %s" % (what, output, relation, option, path, what))


def _inside(path, folder):
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def check_replaceable(output, what):
    """An ``apply`` output may be absent, an empty folder, or a folder that an
    earlier ``apply`` wrote (it holds :data:`APPLY_MARKER`): anything else, a file,
    a link or a folder of other files, is a :class:`ConfigError` naming it."""
    if not os.path.lexists(output):
        return
    if os.path.islink(output):
        raise ConfigError("%s %s is a symbolic link; give the folder itself" % (what, output))
    if not os.path.isdir(output):
        raise ConfigError("%s %s is an existing file; it is never replaced: choose a folder "
                          "path that does not exist" % (what, output))
    entries = os.listdir(output)
    if entries and APPLY_MARKER not in entries:
        raise ConfigError("%s %s is a folder that elasticnet-dist apply did not write (no %s; "
                          "it holds %d entries, e.g. %r); it is never replaced: choose a new "
                          "or empty folder" % (what, output, APPLY_MARKER, len(entries),
                                               sorted(entries)[0]))


# ---- writing -------------------------------------------------------------------------------

def write_atomic(path, data, *, sync=True, mode=None, storage_options=None):
    """Write ``data`` (text, bytes, or a function of a binary file) to ``path`` so
    that a reader, or a crash, sees the old file or the new one, never a mix: a
    temporary file beside ``path``, flushed and fsynced, renamed over it, the
    folder fsynced. An :class:`OSError` (a full disk, a read-only folder) becomes an
    :class:`OutputWriteError` naming ``path``; nothing is left behind.

    The one writer of the manifest, the report's files, checkpoints and ``apply``'s
    marker. A URL (``s3://``, ``gs://``, ``memory://``, any fsspec protocol but
    ``file``) goes through fsspec with ``storage_options`` (:func:`_write_remote`):
    there the guarantee is the store's, see that function."""
    path = os.fspath(path)
    match = _SCHEME.match(path)
    if match and match.group(1).lower() != "file":
        return _write_remote(path, data, storage_options)
    if match:
        path = path[len("file://"):] or "/"
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                   dir=folder)
    except OSError as exc:
        raise OutputWriteError(_cannot_write(path, exc)) from None
    with _removed_on_failure(path, lambda: os.unlink(tmp)):
        os.fchmod(fd, _file_mode(path) if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            _write_data(f, data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    if sync:
        fsync_dir(folder)


def _write_remote(url, data, storage_options=None):
    """:func:`write_atomic` on an fsspec file system: the object is written whole under
    a temporary name beside ``url`` (``.<name>.<random>.tmp``), then moved onto it.

    What holds: object stores (S3, GCS, Azure) create an object in one PUT, so a
    reader of ``url`` sees the old object or the new one, never part of one; a
    failed write removes the temporary object. What does not: the move is a copy
    and a delete, so for a moment both keys exist, and a crash between them leaves
    the temporary object behind (its name says what it is); there is no fsync."""
    import uuid

    import fsspec

    fs, target = fsspec.core.url_to_fs(url, **(storage_options or {}))
    folder, name = posixpath.split(target)
    tmp = posixpath.join(folder, ".%s.%s.tmp" % (name, uuid.uuid4().hex[:12]))
    with _removed_on_failure(url, lambda: fs.rm(tmp)):
        with fs.open(tmp, "wb") as f:
            _write_data(f, data)
        fs.mv(tmp, target)


@contextlib.contextmanager
def _removed_on_failure(target, remove):
    """Around the writing of ``target`` through a temporary: on any failure the
    temporary is removed (``remove()``, best effort) and an :class:`OSError` becomes
    an :class:`OutputWriteError` naming ``target``."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):
            remove()
        if isinstance(exc, OSError):
            raise OutputWriteError(_cannot_write(target, exc)) from None
        raise


def _write_data(f, data):
    """Text (as UTF-8), bytes, or a function that writes to the binary file ``f``."""
    if callable(data):
        data(f)
    else:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _cannot_write(path, exc):
    return "cannot write %s: %s" % (path, exc.strerror or exc)


def _file_mode(path):
    """The mode of the file being replaced, else what the umask gives a new file."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred():
    """SIGINT and SIGTERM wait until the block ends (then arrive as usual): a step
    of a few renames is done whole or not begun. A no-op off the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def commit_files(staging, folder, names, stale=()):
    """Move ``names`` (in this order: the one that certifies the others last) from
    ``staging`` into ``folder`` and remove the files ``stale`` names there, as one
    step that SIGINT and SIGTERM do not interrupt."""
    target = folder
    with signals_deferred():
        try:
            for name in stale:
                target = os.path.join(folder, name)
                if name not in names and (os.path.islink(target) or os.path.isfile(target)):
                    os.unlink(target)
            for name in names:
                target = os.path.join(folder, name)
                os.replace(os.path.join(staging, name), target)
        except OSError as exc:
            raise OutputWriteError("%s: %s" % (type(exc).__name__, _cannot_write(target, exc))) \
                from None
        fsync_dir(folder)


def commit_to_store(staging, url, names, stale=(), storage_options=None):
    """Upload ``names`` from the local folder ``staging`` into the store folder ``url``
    in this order, each whole (:func:`write_atomic`), and remove the objects
    ``stale`` names there that this set does not hold, before the last name (the
    one that certifies the others) goes up.

    What holds: a reader who sees the new last object (the manifest) sees every
    other object of its set, and no object of an earlier set that this one lacks;
    each object appears whole. What does not: the set does not appear at once (a
    reader may see some new report files beside the old manifest for a moment),
    and a crash in the middle leaves the earlier manifest beside some new files,
    which ``validate`` then reports (the run ids differ)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    target = url
    with signals_deferred():
        try:
            *first, last = names
            for name in first:
                target = join_location(url, name)
                write_atomic(target, _reader(os.path.join(staging, name)),
                             storage_options=storage_options)
            for name in stale:
                target = join_location(url, name)
                path = posixpath.join(root, name)
                if name not in names and fs.exists(path):
                    fs.rm(path)
            target = join_location(url, last)
            write_atomic(target, _reader(os.path.join(staging, last)),
                         storage_options=storage_options)
        except OSError as exc:
            raise OutputWriteError("%s: %s" % (type(exc).__name__, _cannot_write(target, exc))) \
                from None


def _reader(path):
    """A writer of the local file ``path``'s bytes into a binary file (for write_atomic)."""
    def copy_into(f):
        with open(path, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
    return copy_into


def prepare_store_folder(url, what, storage_options=None):
    """Check, before any work, that objects can be written under ``url``: a probe
    object is written and removed. An error names ``what`` and the URL."""
    import uuid

    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ConfigError("%s %s cannot be opened: %s (is the fsspec package for it "
                          "installed? s3:// needs the s3 extra)" % (what, url, exc)) from None
    probe = posixpath.join(root, ".elasticnet_dist.probe-%s" % uuid.uuid4().hex[:12])
    try:
        with fs.open(probe, "wb") as f:
            f.write(b"probe")
        fs.rm(probe)
    except OSError as exc:
        raise OutputWriteError("%s %s cannot be written: %s" % (what, url, _short(exc))) \
            from None


def _short(exc, limit=300):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]


# ---- one run per output ---------------------------------------------------------------------

def replace_folder(staging, output):
    """Rename the folder ``staging`` (written whole beside ``output``) to ``output``;
    an existing ``output`` is moved aside first and removed only once the new folder
    is in place (``apply``'s commit step)."""
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


class OutputLock:
    """An exclusive lock on an output for one run: ``flock`` on ``lock_path``,
    which records the holder (pid, host, start, command) for a second run's
    message (:class:`OutputLockedError`, exit 5) and is removed on release.
    Tried once: a scheduler's second run fails fast rather than queueing."""

    def __init__(self, lock_path, what):
        self.path = os.path.abspath(lock_path)
        self.what = what
        self._fd = None

    def __enter__(self):
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputWriteError(_cannot_write(self.path, exc)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise OutputWriteError(_cannot_write(self.path, exc)) from None
                raise OutputLockedError(
                    "%s is in use by another run (%s; lock file %s): wait for it to end or "
                    "stop it" % (self.what, holder, self.path)) from None
            # the file may have been removed by the holder we waited behind: lock anew
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"),
                "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)  # closing releases the flock
        self._fd = None
        return False


def _read_holder(fd):
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
        return "pid %s on %s since %s: %s" % (info.get("pid"), info.get("host"),
                                              info.get("started"), info.get("command"))
    except ValueError:
        return "holder unknown"


def folder_lock(folder, what, storage_options=None):
    """The lock of an output folder (its lock file inside it): an :class:`OutputLock`,
    or a :class:`StoreLock` for a folder on a store."""
    if is_store_url(folder):
        return StoreLock(join_location(folder, LOCK_NAME), what, storage_options)
    return OutputLock(os.path.join(folder, LOCK_NAME), what)


class StoreLock:
    """The lock of an output folder on a store: the object ``url``, created only if
    it does not exist (fsspec's ``"xb"`` mode: a conditional write, ``If-None-Match``
    on S3, where the store has one; elsewhere a check then a write, which two runs
    starting in the same instant can both pass). It records the holder like
    :class:`OutputLock` and is removed when the run ends. Unlike a ``flock`` it
    outlives a run that is killed: the message then says to remove it."""

    def __init__(self, url, what, storage_options=None):
        self.url = url
        self.what = what
        self.storage_options = storage_options or {}
        self._fs = self._path = None

    def __enter__(self):
        import fsspec

        self._fs, self._path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                               timespec="seconds"),
                           "command": " ".join(sys.argv)[:300]}).encode()
        try:
            try:
                with self._fs.open(self._path, "xb") as f:
                    f.write(info)
            except (NotImplementedError, ValueError, TypeError):  # no exclusive create here
                if self._fs.exists(self._path):
                    raise FileExistsError(self._path) from None
                with self._fs.open(self._path, "wb") as f:
                    f.write(info)
        except FileExistsError:
            raise OutputLockedError(
                "%s is in use by another run (%s; lock object %s): wait for it to end, or "
                "remove the lock object if that run is gone (a killed run leaves it)"
                % (self.what, self._holder(), self.url)) from None
        except OSError as exc:
            raise OutputWriteError(_cannot_write(self.url, exc)) from None
        return self

    def _holder(self):
        try:
            info = json.loads(self._fs.cat_file(self._path).decode("utf-8", "replace") or "{}")
            return "pid %s on %s since %s: %s" % (info.get("pid"), info.get("host"),
                                                  info.get("started"), info.get("command"))
        except (OSError, ValueError):
            return "holder unknown"

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            self._fs.rm(self._path)
        return False


def sibling_lock(path, what, storage_options=None):
    """The lock of a folder replaced whole (its lock file beside it): an
    :class:`OutputLock`, or a :class:`StoreLock` for a folder on a store."""
    if is_store_url(path):
        parent, name = path.rstrip("/").rsplit("/", 1)
        return StoreLock("%s/.%s%s" % (parent, name, LOCK_NAME), what, storage_options)
    parent, name = os.path.split(os.path.abspath(path))
    return OutputLock(os.path.join(parent, ".%s%s" % (name, LOCK_NAME)), what)
