"""Deploy several DataWorks nodes, one pipeline run each, with dynamic task mapping.

What
    Deploys the nodes ``8600000000000000006``, ``…007`` and ``…008`` (one per region) in
    parallel: ``CreatePipelineRunOperator.partial(...).expand(object_id=[...])`` makes one
    mapped task instance, and therefore one pipeline run, per ID.

Why
    ``CreatePipelineRun`` accepts a list of object IDs, but DataWorks deploys only the FIRST
    one and silently ignores the rest, so the operator takes exactly one ``object_id`` and
    refuses a list of several. Mapping gives each object its own run, status, retry, log and
    console link; one failing node does not hide the others, and clearing one mapped
    instance re-deploys only that node.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the
      workspace in its ``project_id`` extra.
    * Replace the three IDs with yours (the list can also come from an upstream task's XCom).
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_deploy_mapped",
    description="Deploy several DataWorks nodes, one pipeline run per node",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_create_pipeline_run_mapped]
    deploy = CreatePipelineRunOperator.partial(
        task_id="deploy",
        dataworks_conn_id="dataworks_default",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        max_active_tis_per_dagrun=3,  # how many deployments may run at the same time
    ).expand(object_id=["8600000000000000006", "8600000000000000007", "8600000000000000008"])
    # [END howto_operator_create_pipeline_run_mapped]
