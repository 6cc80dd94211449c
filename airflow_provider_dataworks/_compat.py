"""Airflow version checks and the few places where this provider meets changing Airflow APIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow import __version__ as _airflow_version
from packaging.version import Version

from airflow_provider_dataworks.hooks.retry import RetryPolicy

_BASE = Version(Version(_airflow_version).base_version)

#: ``task_state_store`` and ``BaseTrigger.on_kill`` exist from Airflow 3.3
AIRFLOW_V_3_3_PLUS: bool = Version("3.3.0") <= _BASE


def take_api_retry_policy(kwargs: dict[str, Any], explicit: Any) -> Any:
    """Route ``retry_policy=`` to the DataWorks API retry policy when it is one (a RetryPolicy or a dict).

    Airflow 3.3's ``BaseOperator`` has its own ``retry_policy`` (task-level retry decisions,
    AIP-105); storing our per-call policy under that attribute would break Airflow's retry
    handling. So our policy lives in ``dataworks_retry_policy``, and ``retry_policy=`` is taken
    for it only when its value is ours; anything else is left for Airflow.
    """
    value = kwargs.get("retry_policy")
    if isinstance(value, (RetryPolicy, Mapping)):
        kwargs.pop("retry_policy")
        if explicit is not None:
            raise ValueError("Pass the DataWorks API retry policy once: dataworks_retry_policy or retry_policy.")
        return value
    return explicit
