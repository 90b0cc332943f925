"""Engines run passes over cached blocks of rows and merge the sums in a fixed order.

An engine knows nothing about elastic nets: after ``load(pieces, decoder)`` it
exposes ``run_pass(kernel, hint)``, ``reference_row()``, ``n_rows``,
``n_features`` and a ``n_passes`` counter (see :mod:`.base`); the solvers see
it through :class:`elasticnet_dist.sources.EngineSource`. Adding an engine
(say Ray) is one module with a :class:`BlockEngine` subclass, a line in
:func:`make_engine`, and a fixture in ``tests/test_engine_contract.py``.

- ``"local"``: this process (:class:`LocalEngine`);
- ``"dask"``: a Dask cluster, embedded ``LocalCluster`` by default;
- ``"spark"``: a Spark session, ``local[*]`` by default.
"""
import contextlib

from .base import BlockEngine
from .local import LocalEngine

ENGINES = ("local", "dask", "spark")


def make_engine(engine="local", cluster=None, **options):
    """An engine by name; ``cluster`` is a scheduler address, Client, master URL or
    SparkSession (see :class:`DaskEngine` and :class:`SparkEngine`).

    An engine instance is returned as it is (the caller then owns its life)."""
    if isinstance(engine, BlockEngine):
        return engine
    if engine == "local":
        if cluster is not None:
            raise ValueError("engine='local' takes no cluster; got %r" % (cluster,))
        return LocalEngine(**options)
    if engine == "dask":
        with _needs_extra("dask"):
            from .dask_engine import DaskEngine
        return DaskEngine(cluster, **options)
    if engine == "spark":
        with _needs_extra("spark"):
            from .spark_engine import SparkEngine
            import pyspark  # noqa: F401
        return SparkEngine(cluster, **options)
    raise ValueError("engine=%r is not supported; choose one of %s" % (engine, list(ENGINES)))


@contextlib.contextmanager
def _needs_extra(name):
    try:
        yield
    except ImportError as exc:
        raise ImportError("engine=%r needs the %s extra: pip install 'elasticnet_dist[%s]' (%s)"
                          % (name, name, name, exc)) from exc


__all__ = ["BlockEngine", "ENGINES", "LocalEngine", "make_engine"]
