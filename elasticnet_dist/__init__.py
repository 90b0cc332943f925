"""elasticnet_dist: elastic-net feature selection on wide tables, one data pass at a time.

The public surface: :class:`ElasticNet` (scikit-learn style, squared or
logistic loss), :class:`ElasticNetCV` (alpha and l1_ratio by cross-validation),
:func:`enet_path`, :func:`alpha_max`, :class:`ElasticNetConvergenceWarning`, and
:func:`read_manifest` (a selected-feature manifest, for downstream jobs).

They are imported on first use (PEP 562): a Dask or Spark worker that unpickles
a block decoder imports ``elasticnet_dist.io`` and ``passes`` only, not
scikit-learn and the estimators (about 140 MB less resident memory per worker).
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("elasticnet_dist")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_PUBLIC = {
    "ElasticNet": "estimators", "ElasticNetConvergenceWarning": "estimators",
    "alpha_max": "estimators", "Manifest": "manifest", "read_manifest": "manifest",
    "ElasticNetCV": "model_selection", "EnetPath": "model_selection",
    "enet_path": "model_selection",
}

__all__ = ["ElasticNet", "ElasticNetCV", "ElasticNetConvergenceWarning", "EnetPath", "Manifest",
           "alpha_max", "enet_path", "read_manifest", "__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(import_module("." + _PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def __dir__():
    return sorted(set(globals()) | set(__all__))
