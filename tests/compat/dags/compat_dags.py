"""DAGs of the compatibility e2e: a sync deploy, a deferred deploy, and a deferred wait to be killed."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

#: an object of the emulator's default seed whose PROD_CHECK stage waits for an approval: its run
#: stays Running until someone executes that stage, so the deferred task is still waiting when killed
AWAITS_APPROVAL = "8600000000000000005"

for dag_id, object_id, deferrable in (
    ("compat_sync_deploy", "8600000000000000002", False),
    ("compat_deferred_deploy", "8600000000000000003", True),
    ("compat_deferred_kill", AWAITS_APPROVAL, True),
):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False):
        CreatePipelineRunOperator(
            task_id="deploy",
            object_id=object_id,
            project_id=10000,
            deferrable=deferrable,
            poll_interval=1,
            cancel_on_kill=True,
        )
