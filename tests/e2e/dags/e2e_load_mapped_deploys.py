"""The load step's DAG: one run maps a deferrable ``CreatePipelineRunOperator`` over many objects.

Not an example. ``tests/e2e/test_e2e_load.py`` adds the objects to the emulator (a workspace of
their own, production deploy behind a manual approval) and passes them here in
``DATAWORKS_E2E_LOAD_PLAN`` (JSON ``{"project_id": ..., "object_ids": [...], "poll_interval": ...}``),
so the test is the one place that knows them. Parsed without the variable the DAG maps over nothing.

Each deploy executes its stages up to the approval stage, which DataWorks accepts and holds
``Running`` until someone approves it in the console; the deploy waits there, as a release window
whose production deploys wait for a sign-off does.
"""

from __future__ import annotations

import json
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

PLAN = json.loads(os.environ.get("DATAWORKS_E2E_LOAD_PLAN", '{"project_id": 30000, "object_ids": []}'))

with DAG(
    dag_id="e2e_load_mapped_deploys",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # Deferred task instances do not count against max_active_tasks; only the running slices do.
    max_active_tasks=len(PLAN["object_ids"]) or 16,
    tags=["dataworks", "e2e"],
) as dag:
    CreatePipelineRunOperator.partial(
        task_id="deploy",
        project_id=PLAN["project_id"],
        deferrable=True,
        poll_interval=float(PLAN.get("poll_interval", 10)),
        # The status reads are what this step counts; the report's ListPipelineRunItems is not.
        report=False,
    ).expand(object_id=PLAN["object_ids"])
