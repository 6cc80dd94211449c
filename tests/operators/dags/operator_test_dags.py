"""DAGs that tests/operators/test_dag_runs.py runs with ``dag.test()`` (not examples; see example_dags/)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
RETRIES = {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05}
WORKFLOW = "8600000000000000001"
NODE = "8600000000000000002"
FAILING_NODE = "8600000000000000009"
STD_WORKFLOW = "8600000000000000021"


def deploy(task_id: str = "deploy", **kwargs) -> CreatePipelineRunOperator:
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("dataworks_retry_policy", RETRIES)
    return CreatePipelineRunOperator(task_id=task_id, **kwargs)


for deferrable in (False, True):
    suffix = "deferrable" if deferrable else "sync"
    with DAG(f"op_test_deploy_{suffix}", schedule=None, start_date=START, catchup=False):
        deploy(object_id=WORKFLOW, deferrable=deferrable)
    with DAG(f"op_test_fail_{suffix}", schedule=None, start_date=START, catchup=False):
        deploy(object_id=FAILING_NODE, deferrable=deferrable, retries=0)

with DAG("op_test_create_then_sensor", schedule=None, start_date=START, catchup=False):
    create = deploy(
        object_id=NODE, run_mode="Auto", auto_run_until_stage="PROD", advance_stages=False, wait_for_completion=False
    )
    wait = PipelineRunSensor(
        task_id="wait",
        pipeline_run_id="{{ ti.xcom_pull(task_ids='deploy') }}",
        deferrable=True,
        poke_interval=0.1,
        timeout=60,
        dataworks_retry_policy=RETRIES,
    )
    create >> wait

with DAG("op_test_dev_then_prod", schedule=None, start_date=START, catchup=False):
    to_dev = deploy(
        "deploy_to_dev", object_id=STD_WORKFLOW, project_id=20000, advance_until_stage="DEV", deferrable=True
    )
    to_prod = PipelineRunSensor(
        task_id="promote_to_prod",
        pipeline_run_id="{{ ti.xcom_pull(task_ids='deploy_to_dev') }}",
        project_id=20000,
        advance_stages=True,
        mode="reschedule",
        poke_interval=0.1,
        timeout=60,
        dataworks_retry_policy=RETRIES,
    )
    to_dev >> to_prod

APPROVAL_NODE = "8600000000000000005"

# execution_timeout ends the wait at an approval stage (that nobody approves) in both modes
for deferrable in (False, True):
    suffix = "deferrable" if deferrable else "sync"
    with DAG(f"op_test_execution_timeout_{suffix}", schedule=None, start_date=START, catchup=False):
        deploy(object_id=APPROVAL_NODE, deferrable=deferrable, retries=0, execution_timeout=timedelta(seconds=5))
    with DAG(f"op_test_execution_timeout_keep_{suffix}", schedule=None, start_date=START, catchup=False):
        deploy(
            object_id=APPROVAL_NODE,
            deferrable=deferrable,
            retries=0,
            execution_timeout=timedelta(seconds=5),
            cancel_on_timeout=False,
        )

# a person abolishes the deployment in the console while the task waits: the task fails once, never retried
for deferrable in (False, True):
    suffix = "deferrable" if deferrable else "sync"
    with DAG(f"op_test_console_stop_{suffix}", schedule=None, start_date=START, catchup=False):
        deploy(object_id=NODE, deferrable=deferrable, retries=2, retry_delay=timedelta(seconds=0))
