"""A recognisable secret and STS token never reach a log line, a repr or an exception."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

# in make compat's version matrix: a secret never reaches a log line, repr or error under each Airflow's logging
pytestmark = pytest.mark.version_matrix

SECRET = "SECRET-c4n4ry-9f2e"
TOKEN = "TOKEN-c4n4ry-77aa"


def test_no_secret_in_logs_reprs_or_errors(emu, monkeypatch, caplog, capsys):
    emu.add_credential("STS.canary", SECRET, security_token=TOKEN)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CANARY",
        emu.connection_uri(project_id=10000)
        .replace(emu.access_key_id, "STS.canary")
        .replace(emu.access_key_secret, SECRET)
        + f"&security_token={TOKEN}",
    )
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        hook = DataWorksHook("canary", retry_policy={"max_attempts": 2, "base_delay": 0.0})
        run_id = hook.create_pipeline_run("8600000000000000002")
        hook.get_pipeline_run(run_id)
        emu.inject_fault(action="GetPipelineRun", kind="http_error", status=500, code="InternalError", count=5)
        for call in (
            lambda: hook.get_pipeline_run(run_id),
            lambda: hook.create_pipeline_run("404404404"),
            lambda: hook.exec_pipeline_run_stage("no-such-run", "PROD"),
        ):
            with pytest.raises(DataWorksError) as err:
                call()
            seen += [str(err.value), repr(err.value), repr(err.value.__cause__)]
        seen += [repr(hook), repr(hook.get_settings()), str(vars(hook.get_settings()).get("conn_id"))]
        ok, reason = hook.test_connection()
        seen.append(reason)

    captured = capsys.readouterr()
    everything = "\n".join([*seen, caplog.text, captured.out, captured.err])
    assert "STS.canary" in everything or run_id in everything  # the scan did see real output
    assert SECRET not in everything
    assert TOKEN not in everything
    assert "Signature=" not in everything
