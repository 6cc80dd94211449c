"""Airflow discovers the provider through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_dataworks.get_provider_info import get_provider_info


def test_provider_info_declares_the_connection_form():
    info = get_provider_info()
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "dataworks"
    assert conn["ui-field-behaviour"]["relabeling"] == {"login": "AccessKey ID", "password": "AccessKey Secret"}
    assert {"region", "endpoint", "project_id", "auth_type", "security_token", "console_url"} <= set(
        conn["conn-fields"]
    )
    assert conn["conn-fields"]["security_token"]["schema"]["format"] == "password"


def test_airflow_providers_list_shows_the_provider(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    airflow = Path(sys.executable).with_name("airflow")

    done = subprocess.run(
        [str(airflow), "providers", "list", "-o", "plain"], env=env, capture_output=True, text=True, timeout=180
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "airflow-provider-dataworks" in done.stdout


def test_airflow_knows_the_connection_type(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    script = (
        "from airflow.providers_manager import ProvidersManager as P; h = P().hooks['dataworks'];"
        "print(h.hook_class_name, h.connection_type)"
    )

    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "airflow_provider_dataworks.hooks.dataworks.DataWorksHook dataworks" in done.stdout


def test_the_provider_declares_its_options_and_airflow_validates_them(tmp_path):
    """The [dataworks] section is in the provider info Airflow validates, and `airflow config` reads it."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATAWORKS__ACCOUNT_QPS": "5"}
    env.pop("AIRFLOW__DATAWORKS__QUOTA_STORE", None)
    script = (
        "from airflow.providers_manager import ProvidersManager as P; P().initialize_providers_configuration();"
        "from airflow.configuration import conf;"
        "info = P().providers['airflow-provider-dataworks'].data['config']['dataworks']['options'];"
        "print(sorted(info), conf.get('dataworks', 'account_qps'), repr(conf.get('dataworks', 'quota_store')),"
        " ('dataworks', 'quota_store') in conf.sensitive_config_values)"
    )

    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['account_qps', 'quota_store'] 5 '' True"
