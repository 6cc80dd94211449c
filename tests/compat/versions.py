"""The Airflow version under test, and the test-side spots where Airflow's own APIs moved."""

from __future__ import annotations

from typing import Any

from airflow import __version__ as airflow_version
from packaging.version import Version

AIRFLOW_VERSION = Version(Version(airflow_version).base_version)
AIRFLOW_V_3 = Version("3.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_1_PLUS = Version("3.1") <= AIRFLOW_VERSION
AIRFLOW_V_3_2_PLUS = Version("3.2") <= AIRFLOW_VERSION
#: a worker hands the task a ``task_state_store`` (the run memory of exactly-once); below, the tag alone
AIRFLOW_V_3_3_PLUS = Version("3.3") <= AIRFLOW_VERSION


def dag_bag(dag_folder: str) -> Any:
    """A ``DagBag`` of ``dag_folder`` (moved to ``airflow.dag_processing.dagbag`` in 3.2)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


def xcom_values(dag_run: Any, task_id: str, key: str) -> dict[int, Any]:
    """The XCom ``key`` of every task instance of ``task_id`` of ``dag_run``, by map index."""
    from airflow.utils.session import create_session

    with create_session() as session:
        if not AIRFLOW_V_3:  # 2.x: read through the task instances, as the operator's link does
            from airflow.models.xcom import XCom

            instances = [ti for ti in dag_run.get_task_instances(session=session) if ti.task_id == task_id]
            pushed = {ti.map_index: XCom.get_value(ti_key=ti.key, key=key, session=session) for ti in instances}
            return {index: value for index, value in pushed.items() if value is not None}
        from airflow.models.xcom import XComModel
        from sqlalchemy import select

        statement = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key)
        rows = session.scalars(select(XComModel).from_statement(statement)).all()
        return {row.map_index: XComModel.deserialize_value(row) for row in rows}
