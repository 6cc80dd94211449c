r"""Run a weekday release window from Airflow: check, approve in Airflow, deploy, announce the release.

What
    Every weekday at 20:00 (Asia/Shanghai) one DataWorks pipeline run carries the workflow
    ``8600000000000000013`` to production, and every task works on that same run:

    1. ``prepare_release`` creates the run and drives it through the package build and the
       production checks (``advance_until_stage="PROD_CHECK"``). It stops there: the run stays
       ``Running`` and waits before ``PROD``. The task returns the run ID.
    2. ``approve_release`` asks a person in Airflow (Browse › Required Actions, or the REST API)
       whether to deploy that run. The question shows the run ID, the checks and the console link.
       Nobody answering within two hours counts as ``Reject``.
    3. On ``Approve``, ``deploy_release`` (a ``PipelineRunSensor`` with ``advance_stages=True``)
       executes ``PROD`` on the same run and waits for ``Success``. When it succeeds, Airflow records
       an event of the asset ``dataworks://cn-hangzhou/10000/8600000000000000013``: DAGs scheduled
       on that asset start after each release.
    4. On ``Reject``, ``abolish_release`` abolishes the run, so nothing is left waiting in DataWorks.

    The run ID goes from task to task as ``prepare_release``'s return value (``prepare_release.output``),
    so the approval, the deployment and the abolish all act on the run that was checked.

Why
    DataWorks has no approval API: an approval configured in DataWorks can only be given in its
    console. This DAG keeps the decision in Airflow, next to the schedule, the logs and the
    alerts of the release. The person approves a run whose checks have already passed, and only
    that run is deployed. Nothing reaches production without an answer, and the stage
    ``PROD`` is executed only after ``Approve``. Consumers wait for the asset instead of a clock
    time, so they follow a release that came late or did not come.

Prerequisites
    * Airflow 3.1 or later (Human-in-the-loop operators) and ``apache-airflow-providers-standard``.
    * A ``dataworks`` connection called ``dataworks_default`` whose ``project_id`` extra is the
      workspace ID (see ``example_release_window.py``); ``make demo`` points it at the emulator.
    * A running triggerer: ``prepare_release`` and ``deploy_release`` are deferrable (and so is
      ``approve_release`` before Airflow 3.3).
    * A basic-mode workspace, whose stages are ``BUILD_PACKAGE`` → ``PROD_CHECK`` → ``PROD``. Read the
      stage codes of your workspace from a pipeline run (``GetPipelineRun``) and adjust
      ``advance_until_stage``. Replace ``8600000000000000013`` with your workflow's ID and the
      asset URI with your region, workspace and workflow.
    * Optional: ``assigned_users`` on ``approve_release`` limits who may answer.
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30) shortens the polling
      interval for tests and demos; it is read when the file is parsed.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.standard.operators.hitl import HITLBranchOperator

from airflow_provider_dataworks.assets import dataworks_asset
from airflow_provider_dataworks.operators.abolish_pipeline_run import AbolishPipelineRunOperator
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

# [START howto_asset_dataworks_release]
#: the workflow as deployed to production: the asset dataworks://cn-hangzhou/10000/8600000000000000013
RELEASED_WORKFLOW = dataworks_asset("8600000000000000013", project_id=10000, region="cn-hangzhou")
# [END howto_asset_dataworks_release]

APPROVAL_BODY = """\
DataWorks built the release and its production checks passed. **Approve** executes the
stage `PROD` of this pipeline run; **Reject** abolishes it.

* pipeline run: `{{ ti.xcom_pull(task_ids='prepare_release') }}`
* stages: {% for stage in ti.xcom_pull(task_ids='prepare_release', key='pipeline_run_summary')['stages'] -%}
  `{{ stage['code'] }}` {{ stage['status'] }}{{ ', ' if not loop.last }}{%- endfor %}
* DataWorks console: {{ ti.xcom_pull(task_ids='prepare_release', key='pipeline_run_url') }}
"""

with DAG(
    dag_id="dataworks_release_window_approval",
    description="Check, approve in Airflow, then deploy a DataWorks workflow every weekday at 20:00",
    schedule="0 20 * * 1-5",  # Monday to Friday at 20:00, in the timezone of start_date
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,  # a missed window is not made up later
    max_active_runs=1,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_prepare_release]
    prepare_release = CreatePipelineRunOperator(
        task_id="prepare_release",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000013",
        description="Release window (Airflow run {{ run_id }})",
        advance_until_stage="PROD_CHECK",  # build and check; leave PROD to the approval
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=1),
    )
    # [END howto_operator_prepare_release]

    # [START howto_approve_release_in_airflow]
    approve_release = HITLBranchOperator(
        task_id="approve_release",
        subject="Deploy release_candidate_workflow to production?",
        body=APPROVAL_BODY,
        options=["Approve", "Reject"],
        options_mapping={"Approve": "deploy_release", "Reject": "abolish_release"},
        defaults="Reject",  # taken when nobody answers within response_timeout
        response_timeout=timedelta(hours=2),
    )
    # [END howto_approve_release_in_airflow]

    # [START howto_sensor_deploy_approved_release]
    deploy_release = PipelineRunSensor(
        task_id="deploy_release",
        dataworks_conn_id="dataworks_default",
        pipeline_run_id=prepare_release.output,  # the run that was checked and approved
        advance_stages=True,  # execute PROD on that run
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=timedelta(hours=1),
        outlets=[RELEASED_WORKFLOW],  # an asset event when the deployment succeeded
    )
    # [END howto_sensor_deploy_approved_release]

    abolish_release = AbolishPipelineRunOperator(
        task_id="abolish_release",
        dataworks_conn_id="dataworks_default",
        pipeline_run_id=prepare_release.output,
    )

    prepare_release >> approve_release >> [deploy_release, abolish_release]
