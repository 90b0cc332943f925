"""Elastic-net feature selection as a job on a running Dask cluster.

    python pipelines/dask_job.py --scheduler tcp://dask-scheduler:8786 \\
        --input s3://bucket/table/ --label y --output /jobs/selection/ \\
        [any other flag of `elasticnet-dist select`]

The scheduler address comes from ``--scheduler`` or, when that is absent, from
the environment variable ``DASK_SCHEDULER_ADDRESS`` (what dask-gateway,
dask-kubernetes and most job templates set). Without either the job fails
(exit 2) rather than start a cluster on the submitting machine. The exit code
is that of ``elasticnet-dist select`` (see the README).

Needs: ``pip install 'elasticnet_dist[dask]'`` here and on every worker, and
an input every worker can read.
"""
import os
import sys

from elasticnet_dist.cli import main


def job_args(argv, environ):
    """The ``select`` arguments: the address from the environment if not given."""
    args = ["select", "--engine", "dask", *argv]
    if any(a in ("-h", "--help") for a in argv):
        return ["select", "--help"]
    if not any(a == "--scheduler" or a.startswith("--scheduler=") for a in argv):
        address = environ.get("DASK_SCHEDULER_ADDRESS")
        if not address:
            raise SystemExit("dask_job.py needs --scheduler ADDRESS or DASK_SCHEDULER_ADDRESS "
                             "(a running Dask scheduler)")
        args += ["--scheduler", address]
    return args


if __name__ == "__main__":
    try:
        arguments = job_args(sys.argv[1:], os.environ)
    except SystemExit as stop:
        print("error: %s" % stop, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(arguments))
