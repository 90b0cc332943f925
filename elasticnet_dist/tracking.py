"""Log a selection as an MLflow run (the optional ``mlflow`` extra).

One run per ``select``: the resolved configuration as parameters (flattened
``section.key``; secrets are already redacted in the manifest), the chosen
penalty, the counts, the solver's certificate and timings as metrics, the input
URI and schema fingerprint as tags, and the manifest, ``report.html`` and the
figures as artifacts. ``uri="local"`` means a file store in
``<output.dir>/mlruns``; any other value is an MLflow tracking URI
(``file:///...``, ``sqlite:///mlflow.db``, ``http://host:5000``).

MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set (they
are in maintenance mode); for a ``file:`` URI we set it for this process, since
a file store is what a scheduled stage without a tracking server has.
"""
from __future__ import annotations

import json
import logging
import os
import time

from .errors import ConfigError, EngineError
from .manifest import chosen_grid_point
from .redaction import scrub

log = logging.getLogger("elasticnet_dist")

#: MLflow rejects longer parameter values.
MAX_PARAM_CHARS = 6000


def tracking_uri(uri: str, output_dir) -> str:
    """``"local"`` -> ``file://<output_dir>/mlruns``; a bare path -> a file URI."""
    if uri == "local":
        return "file://" + os.path.join(os.path.abspath(output_dir), "mlruns")
    if "://" not in uri and not uri.startswith("file:"):
        return "file://" + os.path.abspath(uri)
    return uri


def run_parameters(document: dict) -> dict:
    """The configuration as flat ``section.key`` -> text, plus the chosen penalty."""
    params = {}
    for section, values in document["config"].items():
        for key, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            text = scrub(text)  # the configuration is redacted; URIs are scrubbed again
            params["%s.%s" % (section, key)] = text[:MAX_PARAM_CHARS]
    params["chosen.alpha"] = repr(document["penalty"]["alpha"])
    params["chosen.l1_ratio"] = repr(document["penalty"]["l1_ratio"])
    return params


def run_metrics(document: dict) -> dict:
    """Numbers of the selection: counts, the chosen penalty, the solver's certificate,
    seconds per phase and, for cross-validation, the chosen point's mean score."""
    solver, selection = document["solver"], document["selection"]
    metrics = {"n_selected": len(document["selected"]), "n_dropped": len(document["dropped"]),
               "alpha": document["penalty"]["alpha"],
               "l1_ratio": document["penalty"]["l1_ratio"],
               "data_passes": solver["data_passes"], "duality_gap": solver["duality_gap"],
               "converged": float(solver["converged"]),
               "rows_used": document["input"].get("rows_used", 0)}
    metrics.update({"seconds_" + k: v for k, v in solver["timings"].items()})
    chosen = chosen_grid_point(document)
    if chosen is not None:
        entry, i = chosen
        metrics["cv_mean_" + selection["metric"]] = entry["mean"][i]
        metrics["cv_se_" + selection["metric"]] = entry["se"][i]
    return {k: float(v) for k, v in metrics.items() if v is not None}


def require_mlflow():
    """A :class:`ConfigError` unless mlflow is installed (``output.mlflow`` asks for it)."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("output.mlflow is set but mlflow is not installed "
                          "(pip install 'elasticnet_dist[mlflow]')") from None


def log_selection(document: dict, files, uri: str, experiment: str, output_dir) -> str:
    """Log ``document`` and ``files`` (artifacts) as a new run; returns its run id.
    A tracking store that cannot be written is an :class:`EngineError` (the
    manifest is already written: the message says so)."""
    require_mlflow()
    import mlflow
    from mlflow.tracking import MlflowClient

    resolved = tracking_uri(uri, output_dir)
    shown = scrub(resolved)
    if resolved.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if resolved.startswith(("http:", "https:")):
        bound_http_retries(shown)
    run_id = None
    try:
        client = MlflowClient(tracking_uri=resolved)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name="select %s" % document["target"]["name"],
                                tags=_tags(document))
        run_id = run.info.run_id
        params = [mlflow.entities.Param(k, v) for k, v in run_parameters(document).items()]
        now = int(time.time() * 1000)
        metrics = [mlflow.entities.Metric(k, v, now, 0)
                   for k, v in run_metrics(document).items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        for path in files:
            client.log_artifact(run_id, path)
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        if run_id is not None:  # not left RUNNING for ever
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception:
                pass
        first = (str(exc).splitlines() or [""])[0]
        raise EngineError("the manifest is written, but the run could not be logged to "
                          "MLflow at %s: %s: %s" % (shown, type(exc).__name__, scrub(first))) \
            from None
    log.info("MLflow run %s logged to %s (experiment %r)", run_id, shown, experiment)
    return run_id


#: MLflow's HTTP client retries 7 times with a backoff factor of 2 and a 120 s
#: timeout: a server that refuses connections held the stage for 251 s after the
#: manifest was written. These bounds apply unless the environment sets its own.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def bound_http_retries(shown_uri):
    """Bound MLflow's retries and timeout for this process (environment wins)."""
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)
    log.info("MLflow at %s: at most %s retries, %s s per request (set MLFLOW_HTTP_REQUEST_"
             "MAX_RETRIES / _TIMEOUT to change)", shown_uri,
             os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"],
             os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"])


def _tags(document):
    source = document["input"]
    return {"elasticnet_dist.version": document["tool"]["version"],
            "input.uri": scrub(str(source.get("uri", ""))),
            "input.schema_fingerprint": str(source.get("schema_fingerprint", "")),
            "manifest.created_at": document["created_at"]}
