"""The local engine: blocks of rows held in this process, passes run in-process."""
from __future__ import annotations

from dataclasses import replace

from ..alignment import aligned
from ..reduction import LazyParts, group_stats_of, grouped_tree_merge
from ..memory import available_memory
from .base import BlockEngine, gigabytes


class LocalEngine(BlockEngine):
    """Table pieces decoded into blocks in this process (no cluster).

    ``cache`` (see :data:`~.base.CACHE_MODES`): with ``"none"``, or ``"auto"`` and
    blocks larger than half the memory available, every pass decodes the pieces
    again, one at a time."""

    name = "local"

    def __init__(self, cache="auto"):
        super().__init__(cache)
        self._blocks = []
        self._pieces, self._decoder = [], None

    @classmethod
    def holding(cls, blocks, summaries, n_features):
        """A local engine over ``blocks`` fetched from another engine (its
        :meth:`~.base.BlockEngine.gather_blocks`, in piece order): the same blocks,
        kernels and merge tree (their arrays aligned here, once)."""
        engine = cls(cache="memory")
        engine._blocks = [replace(block, X=aligned(block.X), y=aligned(block.y),
                                  s=aligned(block.s), o=aligned(block.o))
                          for block in blocks]
        engine.summaries = list(summaries)
        engine.n_features = n_features
        return engine

    def _load(self, pieces, decoder):
        self._blocks = []  # a load again (stratified folds, imputation) frees the last first
        self._blocks = [decoder.load(piece) for piece in pieces]
        return [block.summary for block in self._blocks]

    def _load_streaming(self, pieces, decoder):
        self._pieces, self._decoder = pieces, decoder
        return [decoder.load(piece).summary for piece in pieces]

    def _pass(self, kernel, hint):
        # a group of blocks at a time: a CV Gram pass has K p x p sums per block
        blocks = self._blocks
        return grouped_tree_merge(len(blocks), lambda first, stop: LazyParts(
            lambda i: kernel(blocks[i]), range(first, stop)),
            group=lambda first, stop: group_stats_of(kernel, blocks[first:stop]))

    def _stream_pass(self, kernel, hint):
        pieces, decoder = self._pieces, self._decoder
        return grouped_tree_merge(len(pieces), lambda first, stop: LazyParts(
            lambda i: kernel(decoder.load(pieces[i])), range(first, stop)))

    def memory_budget(self):
        """The memory this machine has available (Linux's MemAvailable)."""
        return available_memory()

    def describe_budget(self, budget):
        return "this machine has %s available" % gigabytes(budget)

    def _release(self):
        self._blocks = []
        self._pieces, self._decoder = [], None
