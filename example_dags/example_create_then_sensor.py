"""Start a DataWorks deployment in one task and wait for it in another, with a sensor.

What
    ``create_run`` creates a pipeline run for the node ``8600000000000000003`` and returns at
    once (``wait_for_completion=False``), pushing the run ID as its XCom. ``wait_for_run``, a
    deferrable :class:`PipelineRunSensor`, pulls that ID and waits for the run to succeed. It
    is also the one that drives the run: with ``advance_stages=True`` it executes every stage
    DataWorks does not start by itself (``PROD_CHECK``, ``PROD``); without it, someone would
    have to click through the stages in the console.

Why
    Splitting "start" from "wait" lets other work sit between the two (notify the owners,
    open a change ticket, run something in parallel) and lets the wait be retried or given
    its own timeout without ever creating a second run. The sensor also watches runs that
    were started elsewhere: pass any run ID to ``pipeline_run_id``.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the
      workspace in its ``project_id`` extra (otherwise set ``project_id`` on both tasks).
    * A running triggerer for the deferrable sensor.
    * Replace ``8600000000000000003`` with the ID of your node.
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_create_then_sensor",
    description="Create a DataWorks pipeline run, then wait for it with a sensor",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_create_pipeline_run_no_wait]
    create_run = CreatePipelineRunOperator(
        task_id="create_run",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000003",
        wait_for_completion=False,  # return the run ID as soon as the run exists
    )
    # [END howto_operator_create_pipeline_run_no_wait]

    # [START howto_sensor_pipeline_run]
    wait_for_run = PipelineRunSensor(
        task_id="wait_for_run",
        dataworks_conn_id="dataworks_default",
        pipeline_run_id="{{ ti.xcom_pull(task_ids='create_run') }}",
        advance_stages=True,  # execute the stages that wait for a trigger (nobody else will)
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=timedelta(hours=1),  # sensor timeout: fail (the run is left as it is)
    )
    # [END howto_sensor_pipeline_run]

    create_run >> wait_for_run
