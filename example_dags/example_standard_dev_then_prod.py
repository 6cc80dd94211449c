"""Deploy to development, check, then promote the SAME pipeline run to production.

What
    In a standard-mode workspace (separate development and production environments) a
    pipeline run has more stages: ``BUILD_PACKAGE`` → ``DEV_CHECK`` → ``DEV`` →
    ``PROD_CHECK`` → ``PROD``. This DAG splits that one run in two halves with a check in
    between:

    1. ``deploy_to_dev`` creates the run for the workflow ``8600000000000000021`` in
       workspace ``20000`` and drives it only up to the ``DEV`` stage
       (``advance_until_stage="DEV"``); the run then waits, still ``Running``, in front of
       ``PROD_CHECK``.
    2. ``smoke_check_dev`` is where your checks against the development environment go; here
       it only confirms that the ``DEV`` stage succeeded.
    3. ``promote_to_prod``, a deferrable :class:`PipelineRunSensor` on the same run ID with
       ``advance_stages=True``, executes ``PROD_CHECK`` and ``PROD`` and waits for
       ``Success``.

Why
    Promoting the run that was checked, instead of creating a new one, guarantees that
    production gets exactly the package that was deployed to and tested in development.
    If the check fails, the run stays parked before production: nothing reaches production,
    and the console shows where it stopped.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``); the
      workspace is set on each task here (``project_id=20000``), so the connection's
      ``project_id`` extra is not used.
    * A standard-mode workspace; replace ``20000`` and ``8600000000000000021`` with yours.
      Stage codes can differ between workspaces (approval or code-review stages): read them
      from a run in the console or from ``GetPipelineRun`` before relying on ``"DEV"``.
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))
WORKSPACE_ID = 20000  # a standard-mode workspace

with DAG(
    dag_id="dataworks_standard_dev_then_prod",
    description="Deploy to DEV, check, then promote the same DataWorks pipeline run to PROD",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_deploy_until_stage]
    deploy_to_dev = CreatePipelineRunOperator(
        task_id="deploy_to_dev",
        dataworks_conn_id="dataworks_default",
        project_id=WORKSPACE_ID,
        object_id="8600000000000000021",
        advance_until_stage="DEV",  # succeed once DEV has succeeded; PROD_CHECK and PROD wait
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_deploy_until_stage]

    @task
    def smoke_check_dev(pipeline_run_id: str) -> None:
        """Stand-in for your checks of the development environment (run the node, compare output…)."""
        from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

        run = DataWorksHook(dataworks_conn_id="dataworks_default").get_pipeline_run(
            pipeline_run_id, project_id=WORKSPACE_ID
        )
        dev = run.stage("DEV")
        if dev is None or not dev.is_success:
            raise RuntimeError(f"Pipeline run {pipeline_run_id} has not deployed to DEV: {run.status}")
        print(f"Pipeline run {pipeline_run_id} is in DEV; the production stages wait for promote_to_prod.")

    # [START howto_sensor_promote_to_prod]
    promote_to_prod = PipelineRunSensor(
        task_id="promote_to_prod",
        dataworks_conn_id="dataworks_default",
        project_id=WORKSPACE_ID,
        pipeline_run_id="{{ ti.xcom_pull(task_ids='deploy_to_dev') }}",
        advance_stages=True,  # execute PROD_CHECK and PROD of the same run
        deferrable=True,
        poke_interval=POLL_INTERVAL,
    )
    # [END howto_sensor_promote_to_prod]

    smoke_check_dev(deploy_to_dev.output) >> promote_to_prod
