"""docs/testing-your-dags.md works as written: its files and its command, copied into a new folder.

The recipe's code blocks are extracted from the page (each names its file with ``title="..."``),
written into an empty folder and run with the page's own command, as a separate pytest session.
"""

from __future__ import annotations

import re

import pytest

from .recipe import RECIPE_PAGE, recipe_commands, recipe_files, write_recipe

RECIPE_TESTS = (
    "test_deploys_the_workflow",
    "test_rides_out_throttling",
    "test_failed_production_check_fails_the_task",
)
TEST_FILE = "tests/test_deploy_sales.py"


@pytest.fixture
def page() -> str:
    return RECIPE_PAGE.read_text(encoding="utf-8")


def test_the_recipe_is_a_dag_file_a_test_file_an_ini_file_and_one_command(page):
    assert sorted(recipe_files(page)) == ["dags/deploy_sales.py", "pyproject.toml", TEST_FILE]
    assert recipe_commands(page) == [["pytest", "-q"]]
    test_names = re.findall(r"^def (test_\w+)", recipe_files(page)[TEST_FILE], re.MULTILINE)
    assert tuple(test_names) == RECIPE_TESTS


def test_the_recipe_passes_as_written(page, tmp_path, run_user_pytest):
    write_recipe(page, tmp_path)
    (command,) = recipe_commands(page)
    assert command[0] == "pytest"

    result = run_user_pytest(*command[1:], "-rA", "-p", "no:cacheprovider")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in RECIPE_TESTS:
        assert f"PASSED {TEST_FILE}::{name}" in output, output
    assert "3 passed" in output


def test_the_recipe_failure_check_catches_a_deploy_that_succeeds(page, tmp_path, run_user_pytest):
    # The failing-deploy test must be able to fail: without the injected stage failure, the deploy
    # succeeds and the user's test has to report that.
    write_recipe(page, tmp_path)
    test_file = tmp_path / TEST_FILE
    source = test_file.read_text(encoding="utf-8")
    assert source.count('fail_at_stage="PROD_CHECK", ') == 1
    test_file.write_text(source.replace('fail_at_stage="PROD_CHECK", ', ""), encoding="utf-8")

    result = run_user_pytest("-q", "-p", "no:cacheprovider", "-k", "failed_production_check")

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed" in output
    assert '>       assert dag_run.get_task_instance("deploy_sales_workflow").state == "failed"' in output, output
