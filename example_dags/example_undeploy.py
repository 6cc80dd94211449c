"""Undeploy (take offline) a DataWorks node from production.

What
    Creates one ``Offline`` pipeline run for the node ``8600000000000000004`` and waits until
    DataWorks has removed it from the production scheduler. Only the run type differs from a
    deployment: the stages are DataWorks' offline ones (``OfflineCheck`` → ``PROD_CHECK`` →
    ``PROD``), and the operator executes those that need a trigger.

Why
    Retiring a node is a change to production like any other: doing it from Airflow leaves a
    record of who retired what and when, and lets the undeployment follow the job that
    replaces it (``deploy_new >> undeploy_old``) instead of relying on someone remembering to
    click "undeploy" in the console.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the
      workspace in its ``project_id`` extra.
    * Replace ``8600000000000000004`` with the ID of a node that is deployed today.
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_undeploy",
    description="Take a DataWorks node offline",
    schedule=None,  # triggered by hand, or by the DAG that deploys the replacement
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_undeploy]
    undeploy_node = CreatePipelineRunOperator(
        task_id="undeploy_node",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000004",
        type="Offline",  # undeploy; "Online" (the default) deploys
        description="Retired by Airflow run {{ run_id }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_undeploy]
