r"""Start downstream work when a DataWorks workflow was released: a DAG scheduled on the object's asset.

What
    ``dataworks_release_consumer`` has no clock schedule: it runs each time the asset
    ``dataworks://cn-hangzhou/10000/8600000000000000013`` gets an event, which the release window
    (``example_release_window_approval.py``, task ``deploy_release``) records when it deployed the
    workflow ``8600000000000000013``. Its one task, ``follow_release``, reads the events that started
    it: each names the pipeline run and whether it was a deployment (``Online``) or an undeployment
    (``Offline``). It reads the run back from DataWorks and returns what it found; the place for your
    own downstream work (a backfill, a cache refresh, a notice to the data's users) is after that.

Why
    The downstream work follows the release, not a clock time: it starts after a late release and
    does not start when the release was rejected or failed (no event then). The event's ``extra``
    says which run deployed what, so the consumer acts on facts DataWorks confirms.

Prerequisites
    * The release window DAG (``example_release_window_approval.py``), or any task that lists
      ``dataworks_asset("8600000000000000013", project_id=10000, region="cn-hangzhou")`` in its
      ``outlets``; Airflow 2.x calls the asset a dataset, and the same code works there.
    * The ``dataworks_default`` connection of the release window, for the read of the run.
    * Unpaused: a paused DAG scheduled on an asset does not queue runs for its events.
    * It does not poll, so ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (read by the other examples) does
      not apply to it.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_dataworks.assets import dataworks_asset
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

# [START howto_schedule_on_dataworks_release]
RELEASED_WORKFLOW = dataworks_asset("8600000000000000013", project_id=10000, region="cn-hangzhou")

with DAG(
    dag_id="dataworks_release_consumer",
    description="Follow each release of a DataWorks workflow, as announced by its asset",
    schedule=[RELEASED_WORKFLOW],  # a run per asset event (events that come together share one run)
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:

    @task
    def follow_release(**context: Any) -> list[dict[str, Any]]:
        """Return each release that started this run, as DataWorks reports its pipeline run."""
        # Airflow 3 passes triggering_asset_events, Airflow 2.x triggering_dataset_events
        triggering = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        hook = DataWorksHook(dataworks_conn_id="dataworks_default")
        releases = []
        for events in triggering.values():
            for event in events:
                extra = dict(event.extra or {})
                run_id = extra.get("pipeline_run_id")
                if not run_id:  # an event recorded without a deployment's extra (e.g. by hand in the UI)
                    continue
                run = hook.get_pipeline_run(run_id, 10000)
                releases.append({"pipeline_run_id": run.id, "type": extra.get("type"), "status": run.status})
        return releases

    follow_release()
# [END howto_schedule_on_dataworks_release]
