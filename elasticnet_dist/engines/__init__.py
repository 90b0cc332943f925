"""Engines run passes over cached blocks of rows and merge the sums in a fixed order.

An engine knows nothing about elastic nets: it exposes ``run_pass(request)``,
``reference_row()``, ``n_rows``, ``n_features`` and a ``n_passes`` counter.
"""
from .local import InMemorySource

__all__ = ["InMemorySource"]
