"""Copied into a temporary user project by scripts/check_wheel.sh and run against the installed wheel.

Proves that imports, package data and the pytest11 plugin (the dataworks_airflow fixture, which
runs the emulator from its packaged seed) work outside the source tree.
"""

from __future__ import annotations

import importlib.resources
import sysconfig
from pathlib import Path

import airflow_provider_dataworks

WORKFLOW = "8600000000000000001"  # daily_sales_workflow in the emulator's packaged seed


def test_the_provider_is_imported_from_the_installed_wheel():
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert site_packages in Path(airflow_provider_dataworks.__file__).resolve().parents
    package = importlib.resources.files("airflow_provider_dataworks")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("testing", "default_seed.json").is_file()


def test_the_release_window_example_deploys_against_the_emulator(dataworks_airflow):
    dag_run = dataworks_airflow.get_dag("dataworks_release_window").test()

    assert dag_run.get_task_instance("deploy_workflow").state == "success"
    (run,) = dataworks_airflow.emulator.runs(object_id=WORKFLOW)
    assert run["status"] == "Success"
    assert dataworks_airflow.emulator.get_object(10000, WORKFLOW)["deployed"] is True
