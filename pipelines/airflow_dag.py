"""Example Airflow DAG: select features daily, check the manifest, write the reduced table.

Needs Apache Airflow >= 2.4 (``airflow.operators.bash.BashOperator``) and the
``elasticnet-dist`` command on the workers' PATH (``pip install
'elasticnet_dist[dask]'``). Copy this file into the DAGs folder and change the
paths and the config file. Airflow fails a task on a non-zero exit code; each
code of the command means one thing (README, "Exit codes"), so an on-failure
callback can tell bad data (3) from an unreachable cluster (5, worth a retry).

The three commands are plain strings at module level so that they can be read
(and tested) without Airflow.
"""
import datetime

TABLE = "s3://warehouse/features/{{ ds }}/"
OUT = "/data/elasticnet/{{ ds }}"

SELECT = ("elasticnet-dist select --config conf/dask-cluster.yaml --input " + TABLE
          + " --label churned --loss logistic --keys customer_id --output " + OUT
          + " --log-format json --progress never")
VALIDATE = ("elasticnet-dist validate " + OUT + "/manifest.json --input " + TABLE
            + " --log-format json")
APPLY = ("elasticnet-dist apply --manifest " + OUT + "/manifest.json --input " + TABLE
         + " --output " + OUT + "/reduced --config conf/dask-cluster.yaml --log-format json")

try:
    from airflow import DAG
    from airflow.operators.bash import BashOperator
except ImportError:  # reading the commands without Airflow (the project's tests)
    DAG = None

if DAG is not None:
    with DAG(dag_id="elasticnet_feature_selection", schedule="@daily",
             start_date=datetime.datetime(2026, 1, 1), catchup=False,
             default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=10)},
             tags=["features"]) as dag:
        select = BashOperator(task_id="select_features", bash_command=SELECT)
        validate = BashOperator(task_id="validate_manifest", bash_command=VALIDATE)
        apply = BashOperator(task_id="write_reduced_table", bash_command=APPLY)
        select >> validate >> apply
