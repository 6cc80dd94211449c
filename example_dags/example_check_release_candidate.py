r"""Run the production checks of a release candidate every hour before the release window, without deploying.

What
    Every hour from 12:00 to 19:00 on weekdays (Asia/Shanghai) this DAG creates one DataWorks
    pipeline run of the workflow ``8600000000000000013`` with ``check_only=True``: the operator
    lets DataWorks build the package, executes the check stage (``PROD_CHECK``), and abolishes the
    run before its deploy stage. Nothing is deployed. The task succeeds when every check passed and
    fails with the failing check's stage and DataWorks' message otherwise; the deployment report
    (XComs ``pipeline_run_items`` and ``pipeline_run_summary``, a table in the task log) shows what
    the release would contain.

Why
    Release managers want to know before the 20:00 window (``example_release_window.py``) whether
    the release will pass the production checks, early enough to fix it. A check-only run uses
    DataWorks' own checks, so what passes here is what the window will check again.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the workspace
      in its ``project_id`` extra, and a running triggerer.
    * Replace ``8600000000000000013`` with the ID of your workflow or node.
    * The workspace must let the API execute the check stage (a stage that needs an approval in
      the console waits until the timeout).
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_check_release_candidate",
    description="Check a DataWorks release candidate every hour before the release window",
    schedule="0 12-19 * * 1-5",  # hourly, weekdays, until the 20:00 window
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,  # only the latest state of the candidate matters
    max_active_runs=1,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_check_only]
    check_release_candidate = CreatePipelineRunOperator(
        task_id="check_release_candidate",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000013",
        description="Release candidate check (Airflow run {{ run_id }})",
        check_only=True,  # build and check stages only; the run is abolished before it deploys
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(minutes=45),  # leaves the hour for the next check
    )
    # [END howto_operator_check_only]
