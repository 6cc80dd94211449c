"""Deploy a DataWorks node only after a data-quality check on its input has passed.

What
    ``prepare_demo_table`` creates and fills a small ``dataworks_example_sales`` table (a
    stand-in for the data the node reads; the statements are idempotent). Two checks from
    the common-sql provider guard the deployment: ``check_row_count`` requires at least
    ``min_rows`` rows (a DAG param, default 1) and ``check_columns`` requires unique order IDs
    and non-null, non-negative amounts. ``deploy_node`` deploys the node
    ``8600000000000000002`` only when both pass; if one fails, ``deploy_node`` ends
    ``upstream_failed`` and no pipeline run is created. Try it with the trigger conf
    ``{"min_rows": 1000000}``.

Why
    A deployment that changes how a node reads its input is safest when the input looks as
    expected. The check operators work with any database that has an Airflow SQL hook
    (MaxCompute through a DB-API connection, Hologres and AnalyticDB through Postgres/MySQL,
    …); SQLite only keeps this example self-contained.

Prerequisites
    * The ``dataworks_default`` connection (see ``example_release_window.py``), with the
      workspace in its ``project_id`` extra.
    * A SQLite connection called ``dataworks_example_sqlite`` whose host is the database
      file (created on first use), e.g. ``AIRFLOW_CONN_DATAWORKS_EXAMPLE_SQLITE`` set to
      ``{"conn_type": "sqlite", "host": "/tmp/dataworks_example.db"}`` or, as a URI,
      ``sqlite://%2Ftmp%2Fdataworks_example.db`` (the path is URL-encoded: the SQLite
      provider reads it from the host; ``sqlite:////tmp/…`` does not work).

    * ``apache-airflow-providers-common-sql`` and ``apache-airflow-providers-sqlite``.
    * Replace ``8600000000000000002`` with the ID of your node, and the table and checks with
      your own.
    * Optional: ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30), read at parse time.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param
from airflow.providers.common.sql.operators.sql import (
    SQLCheckOperator,
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
)

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

POLL_INTERVAL = float(os.environ.get("DATAWORKS_EXAMPLE_POLL_INTERVAL", "30"))
SQL_CONN_ID = "dataworks_example_sqlite"

with DAG(
    dag_id="dataworks_deploy_after_quality_check",
    description="Deploy a DataWorks node after a data-quality check",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "min_rows": Param(1, type="integer", minimum=0, description="Fewest rows the input table must have"),
    },
    tags=["dataworks", "example"],
) as dag:
    prepare_demo_table = SQLExecuteQueryOperator(
        task_id="prepare_demo_table",
        conn_id=SQL_CONN_ID,
        sql=[
            "CREATE TABLE IF NOT EXISTS dataworks_example_sales"
            " (order_id INTEGER PRIMARY KEY, region TEXT, amount REAL)",
            "INSERT OR REPLACE INTO dataworks_example_sales VALUES (1, 'cn', 120.5), (2, 'sg', 80.0), (3, 'de', 42.0)",
        ],
    )

    # [START howto_deploy_after_quality_check]
    check_row_count = SQLCheckOperator(
        task_id="check_row_count",
        conn_id=SQL_CONN_ID,
        # every value of the first row must be truthy; "| int" keeps the param a number
        sql="SELECT COUNT(*) >= {{ params.min_rows | int }} FROM dataworks_example_sales",
    )

    check_columns = SQLColumnCheckOperator(
        task_id="check_columns",
        conn_id=SQL_CONN_ID,
        table="dataworks_example_sales",
        column_mapping={
            "order_id": {"unique_check": {"equal_to": 0}, "null_check": {"equal_to": 0}},
            "amount": {"null_check": {"equal_to": 0}, "min": {"geq_to": 0}},
        },
    )

    deploy_node = CreatePipelineRunOperator(
        task_id="deploy_node",
        dataworks_conn_id="dataworks_default",
        object_id="8600000000000000002",
        description="Deployed after the quality checks of Airflow run {{ run_id }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )

    # the default trigger rule (all_success): a failed check leaves deploy_node upstream_failed
    prepare_demo_table >> [check_row_count, check_columns] >> deploy_node
    # [END howto_deploy_after_quality_check]
