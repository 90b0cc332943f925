"""elasticnet_dist: elastic-net feature selection on wide tables, one data pass at a time.

The public surface: :class:`ElasticNet` (scikit-learn style, squared or
logistic loss), :class:`ElasticNetCV` (alpha and l1_ratio by cross-validation),
:func:`enet_path`, :func:`alpha_max`, :class:`ElasticNetConvergenceWarning`, and
:func:`read_manifest` (a selected-feature manifest, for downstream jobs).
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .estimators import ElasticNet, ElasticNetConvergenceWarning, alpha_max
from .manifest import Manifest, read_manifest
from .model_selection import ElasticNetCV, EnetPath, enet_path

try:
    __version__ = _version("elasticnet_dist")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["ElasticNet", "ElasticNetCV", "ElasticNetConvergenceWarning", "EnetPath", "Manifest",
           "alpha_max", "enet_path", "read_manifest", "__version__"]
