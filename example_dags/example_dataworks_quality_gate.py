r"""Deploy a DataWorks node only after its DataWorks Data Quality rules passed.

What
    ``quality_gate`` runs the DataWorks Data Quality evaluation task ``70001`` (the rules kept in
    DataWorks Data Quality for the node's input table) for this DAG run's data interval and waits
    for its result on the triggerer. ``Passed`` opens the gate, and so does ``Warned`` (set
    ``fail_on_warn=True`` to stop on warnings too); ``Critical`` or ``Error`` fail the task, naming
    each rule that did not pass with its threshold and actual value, and ``deploy_node`` ends
    ``upstream_failed``: no pipeline run is created. Otherwise ``deploy_node`` deploys the node
    ``8600000000000000014``.

Why
    Many DataWorks users keep their quality rules in DataWorks Data Quality rather than as SQL
    in Airflow. Gating the deployment on those rules keeps one source of truth for "is the data
    good" and still puts the release in an Airflow DAG. The evaluation's ``triggerTime`` is the
    data interval's end, the base time of ``$[yyyymmdd]`` in the rules' data range.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the workspace
      in its ``project_id`` extra, and a running triggerer.
    * Replace ``70001`` with the ID of your Data Quality evaluation task (Data Quality → quality
      monitoring) and ``8600000000000000014`` with the ID of your node. For data outside
      MaxCompute, also pass ``resource_group_id=`` (and ``cu=``).
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_dataworks.operators.data_quality import DataQualityEvaluationOperator
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="dataworks_quality_gate",
    description="DataWorks Data Quality gate, then deploy",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dataworks", "example"],
) as dag:
    # [START howto_operator_data_quality_gate]
    quality_gate = DataQualityEvaluationOperator(
        task_id="quality_gate",
        dataworks_conn_id="dataworks_default",
        data_quality_evaluation_task_id=70001,
        fail_on_warn=False,  # a warning is logged with the rules that warned; the gate opens
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )

    deploy_node = CreatePipelineRunOperator(
        task_id="deploy_node",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000014",
        description="Deployed after Data Quality evaluation {{ ti.xcom_pull(task_ids='quality_gate') }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )

    quality_gate >> deploy_node
    # [END howto_operator_data_quality_gate]
