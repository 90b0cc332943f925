"""The ordered reduction of a pass: partial sums merged by a tree of fixed shape.

A pass maps a kernel over blocks of rows; each block gives a dict of float64
arrays (its partial sums), and the dicts are added key by key. This module
knows nothing of what the sums are (it imports no part of the problem): it
fixes *how* they are added, so that every engine and every run adds the same
numbers in the same order and gets the same bits:

- :func:`tree_merge`: groups of ``FAN_IN`` consecutive parts, then groups of
  those, ...; the shape depends only on the number of parts;
- :func:`subtrees` / :func:`finish_tree`: a worker holding a run of consecutive
  parts merges the largest whole nodes it can and the driver finishes the tree
  with the same result (what the Dask and Spark engines do for large results);
- :func:`grouped_tree_merge`: the same tree computed one group at a time, so
  that at most one group of large results is held at once;
- :class:`PassHint`: what an engine may know about a pass's results (their size,
  and what to tell the user if they do not fit) without knowing what they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Partial results merged at each node of the reduction tree.
FAN_IN = 8
#: Results of at least this many bytes per block are "large": engines merge them
#: where they are made (the tree's lower levels on the workers) rather than
#: shipping one per block to the driver.
LARGE_RESULT_BYTES = 4 * 2**20


@dataclass(frozen=True)
class PassHint:
    """What an engine should know of one pass's results, and nothing more.

    ``result_bytes``: bytes of the matrices in one block's result (what grows with
    the square of a dimension; 0 when there are only vectors). ``what`` and
    ``advice`` complete the memory error an engine raises when that does not fit
    (e.g. ``"matrices over 812 features for 5 folds"`` and the settings to change).
    """

    result_bytes: int = 0
    what: str = "its partial sums"
    advice: str = "give it more memory"

    @property
    def large(self):
        return self.result_bytes >= LARGE_RESULT_BYTES


def merge_stats(parts, owned=False):
    """Sum a sequence of :func:`block_stats` results key by key, in the given order
    (``None`` stands for a block without rows and is skipped; ``owned``: see
    :func:`merge_group`)."""
    total = merge_group(parts, owned)
    if total is None:
        raise ValueError("a pass needs at least one block of rows")
    return total



def merge_group(parts, owned=False):
    """:func:`merge_stats` of one node of the tree; ``None`` when every part is empty.

    The parts are left as they are, unless ``owned`` (nothing else holds them:
    results just received from the workers): the sum is then made in the
    first part's arrays, not in a copy (160 MB for 5 folds at p = 2,000).

    ``parts`` may be an iterator: each part is added to the total and dropped
    before the next is taken, so a node over lazily computed parts
    (:class:`LazyParts`) holds two of them at a time, not all (with K p x p
    matrices per part: 8 blocks of 100,000 x 2,000 with 5 folds summed 20%
    faster so, in one process)."""
    total = None
    for part in parts:
        if part is None:
            continue
        if total is None:
            total = {k: _writable(v) if owned else np.array(v, dtype=np.float64, copy=True)
                     for k, v in part.items()}
        else:
            for k, v in part.items():
                total[k] += v
    return total


def _writable(value):
    """``value`` as a float64 array that may be written, copied only if it must be."""
    array = np.asarray(value, dtype=np.float64)
    return array if array.flags.writeable else array.copy()


def group_stats_of(kernel, blocks):
    """A level-1 node of the tree over consecutive ``blocks``: the kernel's own
    ``group(blocks)`` if it has one (a kernel may know a faster way to the same
    sums: :meth:`~elasticnet_dist.passes.BlockKernel.group` asks a statistics
    store), else each block's result added in order as it is made."""
    group = getattr(kernel, "group", None)
    return group(blocks) if group is not None else merge_group(kernel(b) for b in blocks)


class LazyParts:
    """The parts ``compute(i)`` for ``i`` in ``indices`` as a sequence computed on
    access: :func:`subtrees` then merges each where it is made (see :func:`merge_group`)."""

    def __init__(self, compute, indices):
        self.compute, self.indices = compute, list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.compute(self.indices[i])


def tree_merge(parts, fan_in=FAN_IN, owned=False):
    """:func:`merge_stats` as a tree of fixed shape: groups of ``fan_in`` consecutive
    partial results, then groups of those, ... The shape depends only on the
    number of parts (empty blocks included), so the rounding is the same on every
    run and engine, and an engine may compute the lower levels where the parts
    are (:func:`merge_group` on each group, or :func:`subtrees` of a run of parts)
    and finish here (:func:`finish_tree`) with the same result. ``owned``: see
    :func:`merge_group`."""
    parts = list(parts)
    return finish_tree({(0, i): part for i, part in enumerate(parts)}, len(parts), fan_in,
                       owned)


def subtrees(parts, first, n_parts, fan_in=FAN_IN, group=None):
    """The largest nodes of :func:`tree_merge`'s tree over ``n_parts`` parts that lie
    within the run ``parts`` (the parts ``first, first + 1, ...``), merged:
    ``{(level, index): stats}``, node ``index`` of ``level`` covering the parts
    ``index * fan_in**level`` up to the next node's. A worker holding a run of
    consecutive parts sends these instead of the parts; :func:`finish_tree`
    completes the tree from them. Parts are taken in order, once each, as their
    node is merged (``parts`` may be :class:`LazyParts`).

    ``group(i, j)``, when given, makes the level-1 node over the parts ``i`` to
    ``j - 1`` (their :func:`merge_group`) in place of this function: an engine
    passes its kernel's, which a statistics store may answer for a whole node
    without computing its parts (:meth:`~elasticnet_dist.passes.BlockKernel.group`)."""
    stop = first + len(parts)
    nodes = {(0, first + i): i for i in range(len(parts))}  # level 0: where in parts

    def take(level, index):
        node = nodes.pop((level, index))
        return parts[node] if level == 0 else node

    def merged(level, children):
        if level == 0 and group is not None:
            for c in children:
                nodes.pop((0, c))
            return group(children.start, children.stop)
        return merge_group(take(level, c) for c in children)

    level = 0
    while True:
        n_level = -(-n_parts // fan_in ** level)  # nodes at this level
        width = fan_in ** (level + 1)             # parts under a node one level up
        made = False
        for g in range(-(-first // width), -(-n_parts // width)):
            if n_level == 1 or min(n_parts, (g + 1) * width) > stop:
                break
            children = range(g * fan_in, min(n_level, (g + 1) * fan_in))
            nodes[(level + 1, g)] = merged(level, children)
            made = True
        if not made:
            return {key: take(*key) if key[0] == 0 else node for key, node in list(nodes.items())}
        level += 1


def finish_tree(nodes, n_parts, fan_in=FAN_IN, owned=False):
    """:func:`tree_merge` of ``n_parts`` parts given as nodes of its tree
    (``{(level, index): stats}``, e.g. from :func:`subtrees`) that cover every part
    once; ``owned``: nothing else holds them (see :func:`merge_group`)."""
    if n_parts == 0:
        raise ValueError("a pass needs at least one block of rows")
    level, n = 0, n_parts
    current = {i: stats for (lv, i), stats in nodes.items() if lv == 0}
    while n > 1:
        m = -(-n // fan_in)
        upper = {}
        for g in range(m):
            children = range(g * fan_in, min(n, (g + 1) * fan_in))
            if (level + 1, g) in nodes:
                upper[g] = nodes[(level + 1, g)]
            elif all(c in current for c in children):
                upper[g] = merge_group([current[c] for c in children], owned)
            # else: a node further up covers these parts
        current, n, level = upper, m, level + 1
    return merge_stats([current[0]], owned)


def grouped_tree_merge(n_parts, group_stats, fan_in=FAN_IN, group=None):
    """:func:`tree_merge` of ``n_parts`` parts computed one
    group of ``fan_in`` consecutive parts at a time (``group_stats(first, stop)``
    returns their list, or :class:`LazyParts` to hold one
    part at a time): at most one group and the merged groups are held at once. The
    parts are computed for this merge, which therefore sums into them. ``group(i,
    j)``: the level-1 node over the parts ``i`` to ``j - 1`` (see :func:`subtrees`)."""
    nodes = {}
    for first in range(0, n_parts, fan_in):
        stop = min(n_parts, first + fan_in)
        nodes.update(subtrees(group_stats(first, stop), first, n_parts, fan_in, group))
    return finish_tree(nodes, n_parts, fan_in, owned=True)
