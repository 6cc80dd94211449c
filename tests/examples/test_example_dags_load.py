"""Every example DAG parses, keeps its fixed IDs and reads as documentation (STYLE habit 10)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from compat.versions import AIRFLOW_VERSION
from packaging.version import Version

EXAMPLE_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"

#: file → (DAG id, task ids). Fixed: the e2e suite and the docs refer to them.
EXAMPLES = {
    "example_release_window.py": ("dataworks_release_window", {"deploy_workflow"}),
    "example_deploy_after_quality_check.py": (
        "dataworks_deploy_after_quality_check",
        {"prepare_demo_table", "check_row_count", "check_columns", "deploy_node"},
    ),
    "example_create_then_sensor.py": ("dataworks_create_then_sensor", {"create_run", "wait_for_run"}),
    "example_undeploy.py": ("dataworks_undeploy", {"undeploy_node"}),
    "example_deploy_mapped.py": ("dataworks_deploy_mapped", {"deploy"}),
    "example_standard_dev_then_prod.py": (
        "dataworks_standard_dev_then_prod",
        {"deploy_to_dev", "smoke_check_dev", "promote_to_prod"},
    ),
    "example_check_release_candidate.py": ("dataworks_check_release_candidate", {"check_release_candidate"}),
    "example_dataworks_quality_gate.py": ("dataworks_quality_gate", {"quality_gate", "deploy_node"}),
    "example_release_consumer.py": ("dataworks_release_consumer", {"follow_release"}),
    "example_release_window_approval.py": (
        "dataworks_release_window_approval",
        {"prepare_release", "approve_release", "deploy_release", "abolish_release"},
    ),
}

#: examples that import what only a newer Airflow has: file → that Airflow (below it, the import fails)
NEEDS_NEWER_AIRFLOW = {"example_release_window_approval.py": "3.1"}  # Human-in-the-loop operators
#: the examples the installed Airflow can parse
PARSEABLE = {f: v for f, v in EXAMPLES.items() if Version(NEEDS_NEWER_AIRFLOW.get(f, "0")) <= AIRFLOW_VERSION}


def test_example_dags_folder_holds_exactly_the_examples():
    assert sorted(p.name for p in EXAMPLE_DAGS_FOLDER.glob("*.py")) == sorted(EXAMPLES)


def test_example_dags_parse_without_import_errors(example_dag_bag):
    # an example that needs a newer Airflow fails on its import of what that Airflow brings, nothing else
    assert {Path(path).name for path in example_dag_bag.import_errors} == set(EXAMPLES) - set(PARSEABLE)
    assert sorted(example_dag_bag.dag_ids) == sorted(dag_id for dag_id, _ in PARSEABLE.values())


@pytest.mark.parametrize(("file_name", "dag_id", "task_ids"), [(f, *v) for f, v in PARSEABLE.items()])
def test_example_dag_has_its_fixed_ids_and_settings(example_dag_bag, file_name, dag_id, task_ids):
    dag = example_dag_bag.get_dag(dag_id)
    assert dag is not None
    assert dag.fileloc.endswith(file_name)
    assert set(dag.task_ids) == task_ids
    assert dag.catchup is False
    assert set(dag.tags) == {"dataworks", "example"}


@pytest.mark.parametrize("file_name", sorted(EXAMPLES))
def test_example_file_reads_as_documentation(file_name):
    source = (EXAMPLE_DAGS_FOLDER / file_name).read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    for heading in ("What", "Why", "Prerequisites"):
        assert re.search(rf"^{heading}$", docstring, re.MULTILINE), f"{file_name}: no {heading!r} section"
    starts = re.findall(r"# \[START (howto_\w+)\]", source)
    ends = re.findall(r"# \[END (howto_\w+)\]", source)
    assert starts, f"{file_name}: no # [START howto_…] marker"
    assert starts == ends
    assert 'dataworks_conn_id="dataworks_default"' in source
    assert "DATAWORKS_EXAMPLE_POLL_INTERVAL" in source
