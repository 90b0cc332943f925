"""Elastic-net feature selection as a ``spark-submit`` application.

    spark-submit --master spark://head:7077 --conf spark.executor.memory=8g \\
        pipelines/spark_submit_job.py --input hdfs:///warehouse/table/ --label y \\
        --output /jobs/selection/ [any other flag of `elasticnet-dist select`]

The master and every Spark setting come from ``spark-submit`` (this script
starts no session of its own); the arguments are those of ``elasticnet-dist
select``, with the engine set to spark. The exit code is the command's (0 ok,
2 configuration, 3 input data, 4 not converged, 5 engine; see the README).

Needs: Java 17, ``pip install 'elasticnet_dist[spark]'`` on the driver and on
every executor (or ``--archives`` of a virtual environment with
``PYSPARK_PYTHON`` pointing into it), and an input every executor can read.
"""
import sys

from elasticnet_dist.cli import main

if __name__ == "__main__":
    sys.exit(main(["select", "--engine", "spark", *sys.argv[1:]]))
