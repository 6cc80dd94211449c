"""The chaos DAG of the production-shaped end-to-end step: many deployments at once, sync and deferred.

``deploy_sync`` waits on a Celery worker, ``deploy_deferred`` on a triggerer; the object IDs come
from ``DATAWORKS_CHAOS_PLAN`` (JSON ``{"sync": [...], "deferrable": [...]}``), set by the harness
that also gives each object its own stage duration in the emulator. Both tasks retry, so a worker
killed in the middle of a wait is survived by a retry that adopts the same pipeline run.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

PLAN = json.loads(os.environ.get("DATAWORKS_CHAOS_PLAN", '{"sync": [], "deferrable": []}'))
POLL_INTERVAL = float(os.environ.get("DATAWORKS_CHAOS_POLL_INTERVAL", "2"))

with DAG(
    dag_id="dataworks_chaos",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=32,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
    tags=["dataworks", "e2e"],
) as dag:
    CreatePipelineRunOperator.partial(
        task_id="deploy_sync",
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        description="chaos sync {{ run_id }}",
    ).expand(object_id=PLAN["sync"])

    CreatePipelineRunOperator.partial(
        task_id="deploy_deferred",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        description="chaos deferred {{ run_id }}",
    ).expand(object_id=PLAN["deferrable"])
