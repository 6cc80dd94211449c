"""Airflow version checks and the few places where this provider meets changing Airflow APIs."""

from __future__ import annotations

from airflow import __version__ as _airflow_version
from packaging.version import Version

_BASE = Version(Version(_airflow_version).base_version)

#: ``task_state_store`` and ``BaseTrigger.on_kill`` exist from Airflow 3.3
AIRFLOW_V_3_3_PLUS: bool = Version("3.3.0") <= _BASE
