"""The ``dataworks_airflow`` fixture in a user's project of its own, run as a separate pytest session.

The project's ``conftest.py`` imports Airflow at module level, which is what makes the plugin's
early ``AIRFLOW_HOME`` necessary; the tests inside it check what the fixture promises from the
inside (home, database, DAGs folder, connection id, proxies) and report it through their outcome.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

PROJECT = {
    "pytest.ini": """
        [pytest]
        dataworks_dags_folder = pipelines
        dataworks_conn_id = my_dataworks
        dataworks_project_id = 20000
    """,
    # Imports Airflow (and so reads its settings) before any fixture runs.
    "conftest.py": """
        from airflow import settings

        IMPORTED_WITH_DATABASE = str(settings.SQL_ALCHEMY_CONN)
    """,
    "pipelines/deploy.py": """
        from datetime import datetime, timezone

        from airflow.providers.common.compat.sdk import DAG

        from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

        with DAG(dag_id="deploy_std", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
            CreatePipelineRunOperator(
                task_id="deploy", object_id="8600000000000000023", dataworks_conn_id="my_dataworks", poll_interval=0.1
            )
    """,
    "other_dags/other.py": """
        from datetime import datetime, timezone

        from airflow.providers.common.compat.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG(dag_id="other", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
            EmptyOperator(task_id="nothing")
    """,
    "tests/test_kit.py": """
        import os
        from pathlib import Path

        import conftest
        from airflow.models.dagrun import DagRun

        from airflow_provider_dataworks.testing import PROXY_ENV_VARS


        def test_1_the_session_home_is_throwaway_and_airflow_uses_it(dataworks_airflow):
            assert Path(os.environ["AIRFLOW_HOME"]) == dataworks_airflow.home
            assert dataworks_airflow.home != Path("~/airflow").expanduser()
            assert conftest.IMPORTED_WITH_DATABASE == f"sqlite:///{dataworks_airflow.database}"
            assert dataworks_airflow.database.parent == dataworks_airflow.home


        def test_2_the_dag_deploys_through_the_named_connection(dataworks_airflow):
            assert dataworks_airflow.conn_id == "my_dataworks"
            assert dataworks_airflow.dags_folder.name == "pipelines"
            assert not [name for name in PROXY_ENV_VARS if name in os.environ]

            dag_run = dataworks_airflow.get_dag("deploy_std").test()

            assert dag_run.get_task_instance("deploy").state == "success"
            (run,) = dataworks_airflow.emulator.runs(object_id="8600000000000000023")
            assert (run["project_id"], run["status"]) == (20000, "Success")  # dataworks_project_id
            assert len(DagRun.find(dag_id="deploy_std")) == 1


        def test_3_the_next_test_starts_from_a_fresh_database(dataworks_airflow):
            assert DagRun.find(dag_id="deploy_std") == []
            assert dataworks_airflow.emulator.runs() == []
    """,
    "tests/test_other_folder.py": """
        from pathlib import Path

        import pytest
        from airflow import settings


        @pytest.fixture
        def dataworks_dags_folder():
            return Path(__file__).parents[1] / "other_dags"


        def test_a_module_names_its_own_dags_folder(dataworks_airflow):
            assert settings.DAGS_FOLDER == str(dataworks_airflow.dags_folder)
            assert dataworks_airflow.dags_folder.name == "other_dags"

            dag_run = dataworks_airflow.get_dag("other").test()

            assert dag_run.get_task_instance("nothing").state == "success"


        def test_a_missing_dag_is_named_with_the_folder(dataworks_airflow):
            with pytest.raises(LookupError, match="no DAG 'deploy_std' in .*other_dags"):
                dataworks_airflow.get_dag("deploy_std")
    """,
}
KIT_TESTS = (
    "tests/test_kit.py::test_1_the_session_home_is_throwaway_and_airflow_uses_it",
    "tests/test_kit.py::test_2_the_dag_deploys_through_the_named_connection",
    "tests/test_kit.py::test_3_the_next_test_starts_from_a_fresh_database",
    "tests/test_other_folder.py::test_a_module_names_its_own_dags_folder",
    "tests/test_other_folder.py::test_a_missing_dag_is_named_with_the_folder",
)


def write_project(folder: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip(), encoding="utf-8")


def test_the_fixture_keeps_its_promises_when_conftest_imports_airflow(tmp_path, run_user_pytest):
    write_project(tmp_path, PROJECT)

    result = run_user_pytest("-rA", "-p", "no:cacheprovider")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for test_id in KIT_TESTS:
        assert f"PASSED {test_id}" in output, output


def test_airflow_imported_before_pytest_fails_clearly_and_leaves_the_users_home_alone(tmp_path, run_user_pytest):
    write_project(tmp_path, {k: v for k, v in PROJECT.items() if k != "tests/test_other_folder.py"})
    users_home = tmp_path / "users-airflow-home"
    users_home.mkdir()
    script = "import airflow, pytest, sys; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests']))"

    result = run_user_pytest(python_args=("-c", script), extra_env={"AIRFLOW_HOME": str(users_home)})

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Airflow was imported before the dataworks_airflow fixture could set AIRFLOW_HOME" in output
    assert f"sqlite:///{users_home}/airflow.db" in output  # the database it refused to use
    assert not (users_home / "airflow.db").exists()


def test_without_a_dags_folder_the_fixture_says_how_to_name_one(tmp_path, run_user_pytest):
    write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "tests/test_one.py": "def test_needs_dags(dataworks_airflow):\n    pass\n",
        },
    )

    result = run_user_pytest("-q", "-p", "no:cacheprovider")

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "set `dataworks_dags_folder` in the pytest ini file or override the `dataworks_dags_folder`" in output
