"""Per-piece statistics kept between runs, so that a rerun reads only new files.

A daily table grows by files. The one-pass route reads it once: every piece
(a file, or a run of its row groups) gives one leaf of the merge tree, its
shifted sums and per-fold Gram matrices (:func:`~elasticnet_dist.passes.chunked_block_stats`),
and the driver solves every path from their total. With a store
(``output.stats_store`` / ``--stats-store DIR_OR_URL`` / ``stats_store=``), each
piece's summary and leaf are written under the piece's fingerprint; a rerun
decodes only the pieces it has not seen, and a piece that disappeared is not in
the tree (its files are pruned after the run).

**Bit identity with a cold run.** A piece found in the store is loaded as a
stand-in (:class:`StoredBlock`: its summary, no rows) at its own place among the
pieces. The engines cache it like any block and run the same merge tree over the
same number of parts as a cold run (:mod:`elasticnet_dist.reduction`: its shape
depends on the count alone), and the kernel answers for it with the stored leaf:
the float64 bytes a cold run computes for that piece (raw in a leaf file, no
conversion). The same leaves in the same tree give the same sums, bit for bit.

**Keys.** The *piece*: SHA-256 of its path, size, modification time or ETag,
row groups, first row and footer row count; a rewritten file is a new piece.
The *context*: the decoder, i.e. the projected columns and their roles, dtype,
missing-value policy and its fill, the fold rule (count, keys or fold column,
seed, strata), and this package's version. The *pass*: every field of the
:class:`~elasticnet_dist.passes.PassRequest` (the shift included). A change in
any of them misses the store and recomputes, never reuses a stale number.

**The shift.** The sums are taken about a reference row (the first row of the
first piece, :meth:`~elasticnet_dist.engines.base.BlockEngine.reference_row`),
and every leaf depends on it. The store keeps the first run's (``shift.npz``)
and later runs use it, so that a table whose first file goes (a rolling window)
still reuses the other leaves. A table that only gains files has the same first
row as a cold run, and so the same bits; after its first file went, a run from
the store differs from a cold one by the shift alone (the same sums about
another point: equal to rounding, not bit for bit).

**Layout and size.** ``<root>/v2/<context>/context.json`` says what the context
is; ``<piece>.summary.npz`` (about 8 p float64: 0.13 MB at p = 2,000) and
``<piece>.<pass>.leaf``: the leaf's arrays raw, the K folds' Gram matrices as
their lower triangles, 4 K p (p + 1) bytes (80 MB per piece at p = 2,000 with
5 folds; 8 p^2 bytes more with the full-data Gram of a single fit; with
stability selection's G row groups, a second leaf of 4 G p (p + 1)). A local
leaf is memory-mapped back, its pages mapped at once: adding it into the merge
costs what adding a computed leaf does (the first read of a packed copy spent
0.5 s per piece on fresh pages). Each file is written under a temporary
name and renamed (moved, on an object store), so a reader sees a whole file or
none; an unreadable file counts as absent. A store of an older layout (a
sibling folder ``v1``) is removed after the first successful run.

**Groups of pieces.** Each group of 8 consecutive pieces (a level-1 node of the
merge tree, whose shape the piece count fixes) has a leaf of its own too,
``<node>.<pass>.leaf`` keyed by its pieces' keys in order: their leaves added
in order, the node a cold run computes, bit for bit (one eighth more bytes).
A rerun whose group is unchanged maps that one file instead of its 8 leaves and
adds none of them; a table that only gains files keeps every full group, and
the Dask engine places whole groups on one worker where that costs no balance
(:func:`~elasticnet_dist.engines.dask_engine.contiguous_placement`). 100,000 x
2,000 in 16 files and a 17th: 2 nodes mapped and 1 leaf computed instead of 16
leaves mapped and added.

Only passes that read statistics of the table alone are kept (the moments
pass; no point's coefficients): a later pass over a stand-in decodes its piece
there and then, which is correct, only not faster. The store pays on the
one-pass (Gram) route of the squared loss, where one pass is the whole fit.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import mmap
import os
import posixpath
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .io.blocks import Block, BlockSummary
from .checkpoint import digest
from .outputs import is_store_url, join_location, write_atomic
from .reduction import FAN_IN, merge_group

log = logging.getLogger("elasticnet_dist")

#: The layout's version: a folder of its own, so that a new layout starts afresh
#: (v1 kept whole square Gram matrices, or their triangles on an object store).
FORMAT = "v2"
#: Keys of a file's metadata (fsspec's ``info``) that change when its bytes do.
_VERSION_KEYS = ("ETag", "etag", "mtime", "LastModified", "last_modified", "updated",
                 "generation", "md5Hash", "created")


# ---- keys ----------------------------------------------------------------------------

def file_identity(piece):
    """What changes when the file of ``piece`` is rewritten: ``(size, version)`` from
    the file system (local: ``st_mtime_ns``; a store: its ETag or modification
    time), or None when the file system tells neither."""
    fs, path = piece.filesystem, piece.path
    try:
        if fs is None:
            stat = os.stat(path)
            return stat.st_size, stat.st_mtime_ns
        if hasattr(fs, "get_file_info"):  # a pyarrow file system
            info = fs.get_file_info(path)
            return info.size, info.mtime_ns
        info = fs.info(path)
    except (OSError, ValueError):
        return None
    version = next((str(info[k]) for k in _VERSION_KEYS if info.get(k) is not None), None)
    return None if version is None else (info.get("size"), version)


def piece_id(piece):
    """A piece's place in its table: its file and row groups."""
    return piece.path, piece.row_groups


#: Hex digits of a key kept in file and folder names.
KEY_DIGITS = 32


def piece_key(piece, identity) -> str:
    return digest(("piece", piece.path, identity, piece.row_groups, piece.row_offset,
                   piece.n_rows, piece.partition_values, piece.source))[:KEY_DIGITS]


def node_key(keys) -> str:
    """The key of a level-1 node of the merge tree: its pieces' keys, in order."""
    return digest(("node", tuple(keys)))[:KEY_DIGITS]


def node_keys(keys, fan_in=FAN_IN):
    """The keys of the level-1 nodes of a table whose pieces have ``keys`` (None for
    a piece without one), in order: one per group of ``fan_in`` consecutive pieces
    of two or more, all of them keyed."""
    groups = (keys[i:i + fan_in] for i in range(0, len(keys), fan_in))
    return [node_key(group) for group in groups
            if len(group) > 1 and all(key is not None for key in group)]


def context_key(decoder) -> str:
    """The decoder's fingerprint: every field but the store, and the package version."""
    from . import __version__

    return digest(("context", __version__,
                   dataclasses.replace(decoder, store=None)))[:KEY_DIGITS]


def storable(request) -> bool:
    """Whether a pass's leaves are kept: statistics of the table alone (the moments
    pass), not of a point's coefficients or Hessian blocks."""
    return (request.moments and request.coefs is None and not request.hessians
            and request.holdout is None)


def request_key(request) -> str:
    return digest(request)[:KEY_DIGITS]


# ---- (de)serialising -------------------------------------------------------------------

def encode_summary(summary: BlockSummary):
    """A summary as ``.npz`` entries: arrays as they are, the rest as JSON."""
    arrays, scalars = {}, {}
    for f in dataclasses.fields(summary):
        value = getattr(summary, f.name)
        if isinstance(value, np.ndarray):
            arrays["a_" + f.name] = value
        elif f.name == "extra":
            for key, parts in value.items():  # e.g. class_hashes: a tuple of arrays
                for i, part in enumerate(parts):
                    arrays["e_%d_%s" % (i, key)] = np.asarray(part)
        else:
            scalars[f.name] = value.item() if isinstance(value, np.generic) else value
    arrays["json"] = np.frombuffer(json.dumps(scalars).encode(), dtype=np.uint8)
    return arrays


def decode_summary(entries) -> BlockSummary:
    scalars = json.loads(bytes(entries["json"]).decode())
    scalars["rounded"] = tuple(scalars.get("rounded", ()))
    extra = {}
    for name in sorted(k for k in entries if k.startswith("e_")):
        _, i, key = name.split("_", 2)
        extra.setdefault(key, []).insert(int(i), entries[name])
    arrays = {name[2:]: entries[name] for name in entries if name.startswith("a_")}
    return BlockSummary(**scalars, **arrays, extra={k: tuple(v) for k, v in extra.items()})


#: The first bytes of a leaf file (then the header's length, the header, the arrays).
LEAF_MAGIC = b"ENDLEAF1"
#: Arrays in a leaf file start at multiples of this many bytes.
LEAF_ALIGN = 64


def pack_stats(stats):
    """A leaf as named float64 arrays (``None``, a block without rows: an empty dict).
    The Gram matrices are their lower triangles already (``gram_lower``, see
    :func:`~elasticnet_dist.passes.pack_lower`): half the bytes of the squares."""
    return {key: np.asarray(value, dtype=np.float64)
            for key, value in ({} if stats is None else stats).items()}


def unpack_stats(entries):
    """The statistics :func:`pack_stats` packed, as views of the file's bytes (merges
    copy before they add); None for an empty leaf."""
    return dict(entries) if entries else None


def write_leaf(f, entries):
    """``entries`` (name -> float64 array) as one file: LEAF_MAGIC, the header's length
    (8 bytes), a JSON header (each array's name, shape and offset), then the raw
    arrays at LEAF_ALIGN-byte offsets, to be viewed in place (:func:`read_leaf`;
    ``np.load`` of an ``.npz``, through its zip reader, spent 0.27 s on 80 MB)."""
    header, offset = [], 0
    for name, value in entries.items():
        header.append({"name": name, "shape": list(value.shape), "offset": offset})
        offset += -(-value.nbytes // LEAF_ALIGN) * LEAF_ALIGN
    text = json.dumps(header).encode()
    head = len(LEAF_MAGIC) + 8 + len(text)
    pad = -head % LEAF_ALIGN
    f.write(LEAF_MAGIC + np.uint64(len(text) + pad).tobytes() + text + b" " * pad)
    for value in entries.values():
        f.write(np.ascontiguousarray(value, dtype="<f8").tobytes())
        f.write(b"\0" * (-value.nbytes % LEAF_ALIGN))


def read_leaf(buffer):
    """The entries :func:`write_leaf` wrote, as read-only views of ``buffer`` (the
    file's bytes, or the file memory-mapped)."""
    magic = len(LEAF_MAGIC)
    if bytes(buffer[:magic]) != LEAF_MAGIC:
        raise ValueError("not a statistics leaf (no %r at its start)" % LEAF_MAGIC)
    size = int(np.frombuffer(buffer, dtype="<u8", count=1, offset=magic)[0])
    header = json.loads(bytes(buffer[magic + 8:magic + 8 + size]).decode())
    base = magic + 8 + size
    out = {}
    for item in header:
        count = int(np.prod(item["shape"], dtype=np.int64))
        if base + item["offset"] + 8 * count > len(buffer):
            raise ValueError("the leaf ends inside %s" % item["name"])
        out[item["name"]] = np.frombuffer(buffer, dtype="<f8", count=count,
                                          offset=base + item["offset"]).reshape(item["shape"])
    return out


# ---- the store, as the workers see it --------------------------------------------------

@dataclass(frozen=True)
class PieceStore:
    """The store's folder and the fingerprints of this run's pieces; it travels with
    the decoder (:attr:`~elasticnet_dist.io.blocks.BlockDecoder.store`) to the workers,
    which read and write the files themselves."""

    root: str
    storage_options: dict = field(default_factory=dict)
    keys: tuple = ()   # ((piece_id, key), ...) for the pieces with a known identity

    def key_of(self, piece):
        return dict(self.keys).get(piece_id(piece)) if hasattr(piece, "path") else None

    def path(self, context, name):
        return join_location(self.root, posixpath.join(FORMAT, context, name))

    def read(self, path):
        """The entries of an ``.npz`` file or a leaf (``.leaf``), or None when it is
        missing or unreadable."""
        try:
            if is_store_url(path):
                import fsspec

                with fsspec.open(path, "rb", **self.storage_options) as f:
                    data = f.read()
            elif path.endswith(".leaf"):  # mapped, its pages mapped at once: no copy
                with open(path, "rb") as f:
                    data = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ,
                                     flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            else:
                with open(path, "rb") as f:
                    data = f.read()
            if path.endswith(".leaf"):
                return read_leaf(data)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a damaged file is a missing one
            log.warning("statistics store: %s is unreadable (%s: %s); computing it again",
                        path, type(exc).__name__, exc)
            return None

    def write(self, path, entries):
        """Write (best effort: a store that cannot be written, full or read-only, costs
        the next run its reuse, never this run its result)."""
        if isinstance(entries, str):
            writer = entries
        elif path.endswith(".leaf"):
            writer = lambda f: write_leaf(f, entries)  # noqa: E731
        else:
            writer = lambda f: np.savez(f, **entries)  # noqa: E731
        try:
            if not is_store_url(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, writer, sync=False, storage_options=self.storage_options)
        except Exception as exc:  # noqa: BLE001 - a cache; the fit goes on without it
            log.warning("statistics store: cannot write %s (%s: %s); this piece is read "
                        "again next run", path, type(exc).__name__, exc)

    def origin(self, decoder, piece):
        """The :class:`Origin` of ``piece`` read with ``decoder``: where its entries
        are (None for a piece without a key). An engine that mapped a decoded
        block back from its own spill gives it this again."""
        key = self.key_of(piece)
        if key is None:
            return None
        return Origin(self, context_key(decoder), key, piece,
                      dataclasses.replace(decoder, store=None))

    def load(self, decoder, piece):
        """:meth:`BlockDecoder.load` with the store: a :class:`StoredBlock` when the
        piece's summary is stored, else the piece decoded (its summary written)."""
        origin = self.origin(decoder, piece)
        if origin is None:
            return dataclasses.replace(decoder, store=None).load(piece)
        plain, context, key = origin.decoder, origin.context, origin.key
        entries = self.read(self.path(context, key + ".summary.npz"))
        if entries is not None:
            summary = decode_summary(entries)
            summary.extra["from_store"] = (True,)
            return StoredBlock(np.empty((0, len(decoder.features)), np.dtype(decoder.dtype)),
                               np.empty(0), None, summary, origin=origin)
        block = plain.load(piece)
        self.write(self.path(context, key + ".summary.npz"), encode_summary(block.summary))
        block.origin = origin
        return block


@dataclass
class Origin:
    """Where a block came from, for the kernel: its piece's key in the store.

    A stand-in asked for a pass the store does not hold decodes its piece then and
    keeps the rows (``rows``) for the passes after it, as a cold load would have:
    one more read of that piece, not one per pass."""

    store: PieceStore
    context: str
    key: str
    piece: object
    decoder: object   # the decoder without the store, to decode the piece if needed
    rows: Optional[Block] = None

    @property
    def nbytes(self):
        """Bytes of the rows a stand-in decoded (for an engine's memory accounting)."""
        return 0 if self.rows is None else self.rows.nbytes

    def result(self, kernel, block):
        """``kernel`` on ``block``: the stored leaf if there is one, else computed (on
        the rows, decoded now for a stand-in) and, for a storable pass, stored."""
        stand_in = isinstance(block, StoredBlock)

        def compute():
            if stand_in and self.rows is None:
                self.rows = self.decoder.load(self.piece)
            return kernel.compute(self.rows if stand_in else block)

        return self._kept(self._leaf_path(self.key, kernel.request), compute, read=stand_in)

    def group_result(self, kernel, blocks):
        """``kernel.group(blocks)`` (a level-1 node of the merge tree) with every block
        from this store: the stored node if there is one, else merged from the
        blocks' statistics (each from the store or computed) and, for a storable
        pass, stored. The node of a cold run is the same bits (the same leaves
        added in the same order), so a rerun that finds it maps one file instead
        of ``FAN_IN`` leaves and adds none of them."""
        origins = [block.origin for block in blocks]
        same = all(o.store.root == self.store.root and o.context == self.context
                   for o in origins)
        path = self._leaf_path(node_key([o.key for o in origins]), kernel.request) \
            if same else None
        return self._kept(path, lambda: merge_group(kernel(block) for block in blocks))

    def _leaf_path(self, key, request):
        """Where the leaf of ``key`` for ``request`` is kept; None for a pass the store
        does not keep (:func:`storable`)."""
        if not storable(request):
            return None
        return self.store.path(self.context, "%s.%s.leaf" % (key, request_key(request)))

    def _kept(self, path, compute, read=True):
        """The statistics stored at ``path`` (when ``read``), else ``compute()``, then
        stored there; ``path`` None: computed, not kept."""
        if path is not None and read:
            entries = self.store.read(path)
            if entries is not None:
                return unpack_stats(entries)
        stats = compute()
        if path is not None:
            self.store.write(path, pack_stats(stats))
        return stats


@dataclass
class StoredBlock(Block):
    """A piece whose statistics are in the store: its summary and no rows. The
    engines hold it in the piece's place; the kernel answers from the store."""


# ---- the store, as the driver sees it --------------------------------------------------

class StatsStore:
    """The driver's side: fingerprints the pieces, records what this run used, and
    prunes the rest after a successful run (:meth:`prune`)."""

    def __init__(self, root, storage_options=None):
        from .outputs import output_location

        self.root = output_location(root, "stats_store")
        self.storage_options = dict(storage_options or {})
        self.contexts, self.requests, self.current = set(), set(), set()
        self.n_stored = self.n_decoded = 0
        self.reference = None  # the store's reference row of the last load's context
        self._files = PieceStore(self.root, self.storage_options)  # context.json, shift.npz

    def attach(self, decoder, pieces):
        """``decoder`` with this store, for ``pieces`` (fingerprinted here, once)."""
        keys = []  # each piece's, in order; None where its file tells no size and version
        for piece in pieces:
            identity = file_identity(piece) if hasattr(piece, "path") else None
            keys.append(None if identity is None else piece_key(piece, identity))
        self.current.update(key for key in keys if key is not None)
        self.current.update(node_keys(keys))  # the merge tree's groups of pieces
        unknown = [getattr(piece, "name", str(piece))
                   for piece, key in zip(pieces, keys, strict=True) if key is None]
        if unknown:
            log.warning("statistics store: %d pieces have no size and version on their file "
                        "system (first: %s); they are read every run", len(unknown), unknown[0])
        store = PieceStore(self.root, self.storage_options, tuple(
            (piece_id(piece), key) for piece, key in zip(pieces, keys, strict=True)
            if key is not None))
        return dataclasses.replace(decoder, store=store)

    def record_context(self, decoder, summaries):
        """A load with ``decoder`` happened: keep its context; count its pieces."""
        context = context_key(decoder)
        if context not in self.contexts:
            self.contexts.add(context)
            self._describe(decoder, context)
        self.reference = self._reference(context, summaries, len(decoder.features))
        stored = sum(1 for s in summaries if s.extra.get("from_store"))
        self.n_stored, self.n_decoded = stored, len(summaries) - stored
        log.info("statistics store %s: %d of %d pieces from the store, %d decoded",
                 self.root, stored, len(summaries), len(summaries) - stored)

    def _reference(self, context, summaries, n_features):
        """The context's stored reference row, or the table's (then stored)."""
        path = self._files.path(context, "shift.npz")
        entries = self._files.read(path)
        if entries is not None and entries["x"].shape == (n_features,):
            return entries["x"], float(entries["y"])
        first = next((s for s in summaries if s.n_rows), None)
        if first is None:
            return None
        self._files.write(path, {"x": np.asarray(first.first_x, np.float64),
                                 "y": np.float64(first.first_y)})
        return np.asarray(first.first_x, np.float64), float(first.first_y)

    def record(self, request):
        """A pass ran: keep its leaves (see :func:`storable`)."""
        if storable(request):
            self.requests.add(request_key(request))

    def _describe(self, decoder, context):
        text = json.dumps({"features": len(decoder.features), "label": decoder.label,
                           "weight": decoder.weight, "offset": decoder.offset,
                           "dtype": decoder.dtype, "nan_policy": decoder.nan_policy,
                           "folds": decoder.n_folds, "fold_keys": list(decoder.fold_keys),
                           "fold_column": decoder.fold_column, "fold_seed": decoder.fold_seed,
                           "stratified": decoder.strata is not None}, indent=1)
        self._files.write(self._files.path(context, "context.json"), text)

    def prune(self):
        """After a successful run: remove the contexts this run did not use, and in the
        ones it used the files of pieces no longer in the table and the leaves of
        passes it did not make (when it recorded any). Returns the files removed."""
        fs, base = self._fs()
        top = posixpath.join(base, FORMAT)
        if not fs.exists(top):
            return 0
        removed = 0
        for older in fs.ls(base, detail=False):  # an earlier layout's folder
            name = posixpath.basename(older.rstrip("/"))
            if name != FORMAT and name[:1] == "v" and name[1:].isdigit():
                removed += len(fs.find(older))
                fs.rm(older, recursive=True)
        for folder in fs.ls(top, detail=False):
            context = posixpath.basename(folder.rstrip("/"))
            if context not in self.contexts:
                removed += len(fs.find(folder))
                fs.rm(folder, recursive=True)
                continue
            for path in fs.find(folder):
                name = posixpath.basename(path)
                if name in ("context.json", "shift.npz"):
                    continue
                piece, _, kind = name.partition(".")  # temporaries start with "."
                stale_pass = kind.endswith(".leaf") and self.requests \
                    and kind[:-len(".leaf")] not in self.requests
                if piece not in self.current or stale_pass:
                    fs.rm(path)
                    removed += 1
        if removed:
            log.info("statistics store %s: %d files of pieces or passes no longer used "
                     "removed", self.root, removed)
        return removed

    def size(self):
        """Bytes the store holds."""
        fs, base = self._fs()
        top = posixpath.join(base, FORMAT)
        return sum(fs.du(top, total=False).values()) if fs.exists(top) else 0

    def _fs(self):
        import fsspec

        if is_store_url(self.root):
            return fsspec.core.url_to_fs(self.root, **self.storage_options)
        return fsspec.filesystem("file"), self.root

    def describe(self):
        """For a manifest's provenance: where, and what this run took from it."""
        return {"uri": self.root, "pieces_from_store": self.n_stored,
                "pieces_decoded": self.n_decoded}


def open_store(root, storage_options=None) -> Optional[StatsStore]:
    return None if root is None else StatsStore(root, storage_options)
