r"""Deploy a DataWorks workflow to production in a fixed weekday release window.

What
    Every weekday at 20:00 (Asia/Shanghai) this DAG creates one DataWorks pipeline run that
    deploys the workflow ``8600000000000000001`` (with its child nodes) to production and
    waits until DataWorks reports ``Success``. The operator executes the stages that
    DataWorks does not start by itself (``PROD_CHECK``, ``PROD``), so the run needs no
    click in the console.

Why
    Teams that edit in Data Studio during the day often deploy once, at a time agreed with
    the people on call. Scheduling the deployment in Airflow makes that window explicit,
    gives every deployment a log, a retry policy and an alert, and links the Airflow task to
    the pipeline run in the DataWorks console ("DataWorks Pipeline Run" extra link).
    ``deferrable=True`` hands the wait to the triggerer, so a deployment that takes an hour
    does not hold a worker slot.

Prerequisites
    * A ``dataworks`` connection called ``dataworks_default`` whose ``project_id`` extra is
      the workspace ID, for example from the environment::

          export AIRFLOW_CONN_DATAWORKS_DEFAULT=\
              'dataworks://<AccessKeyId>:<AccessKeySecret>@/?region=cn-hangzhou&project_id=<workspace id>'

      URL-encode the secret; ``make demo`` points the connection at the local emulator.
    * A running triggerer (``airflow triggerer``); ``airflow dags test`` runs triggers inline.
    * Replace ``8600000000000000001`` with the ID of your workflow (Data Studio shows it in the
      workflow's properties).
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30) shortens the
      polling interval for tests and demos; it is read when the file is parsed.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_release_window",
    description="Deploy a DataWorks workflow every weekday at 20:00",
    # [START howto_schedule_release_window]
    schedule="0 20 * * 1-5",  # Monday to Friday at 20:00, in the timezone of start_date
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,  # a missed window is not made up later: the next window deploys the latest version
    # [END howto_schedule_release_window]
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_create_pipeline_run_deferrable]
    deploy_workflow = CreatePipelineRunOperator(
        task_id="deploy_workflow",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000001",  # the workflow; its child nodes are deployed with it
        type="Online",
        description="Release window deployment (Airflow run {{ run_id }})",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=2),  # then abolish the run and fail the task (default: 6 hours)
    )
    # [END howto_operator_create_pipeline_run_deferrable]
