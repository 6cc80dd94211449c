"""Provider metadata read by Airflow's providers manager (``apache_airflow_provider`` entry point).

Airflow 3.2+ builds the connection form from ``conn-fields`` and ``ui-field-behaviour``
without importing the hook, so opening the form never imports the Alibaba SDK. Older versions
ask the hook; both come from :mod:`airflow_provider_dataworks.connection_form`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_dataworks import __version__
from airflow_provider_dataworks.connection_form import conn_fields, ui_field_behaviour_info

#: the ``dataworks://<region>/<workspace id>/<object id>`` scheme and its normaliser
_DATAWORKS_URIS = {"schemes": ["dataworks"], "handler": "airflow_provider_dataworks.assets.sanitize_uri"}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow."""
    return {
        "package-name": "airflow-provider-dataworks",
        "name": "Alibaba Cloud DataWorks",
        "description": "Deploy and undeploy DataWorks Data Studio nodes and workflows with pipeline runs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "external-doc-url": "https://www.alibabacloud.com/help/en/dataworks/",
                "tags": ["alibaba"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": [
                    "airflow_provider_dataworks.hooks.dataworks",
                    "airflow_provider_dataworks.hooks.data_quality",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": [
                    "airflow_provider_dataworks.operators.pipeline_run",
                    "airflow_provider_dataworks.operators.data_quality",
                    "airflow_provider_dataworks.operators.abolish_pipeline_run",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": ["airflow_provider_dataworks.sensors.pipeline_run"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": [
                    "airflow_provider_dataworks.triggers.pipeline_run",
                    "airflow_provider_dataworks.triggers.data_quality",
                ],
            }
        ],
        # Airflow 3 reads "asset-uris", Airflow 2.x "dataset-uris": the same handler for both
        "asset-uris": [dict(_DATAWORKS_URIS)],
        "dataset-uris": [dict(_DATAWORKS_URIS)],
        "extra-links": ["airflow_provider_dataworks.operators.pipeline_run.DataWorksPipelineRunLink"],
        # [dataworks] options: `airflow config list` shows them, and a Redis URL with a password
        # may come from AIRFLOW__DATAWORKS__QUOTA_STORE_SECRET / _CMD (sensitive)
        "config": {
            "dataworks": {
                "description": "The DataWorks provider's process-wide settings (docs/rate-limits.md).",
                "options": {
                    "quota_store": {
                        "description": (
                            "A Redis URL (redis://, rediss://, unix://) where every Airflow process shares one "
                            "request budget per Alibaba Cloud account and region, or 'celery' for the Redis of "
                            "[celery] broker_url. Empty: each process paces its own calls."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "redis://redis:6379/3",
                        "default": "",
                        "sensitive": True,
                    },
                    "account_qps": {
                        "description": (
                            "The account's API quota in calls per second for all calls together (the Basic, "
                            "Standard and Professional editions: 5). With quota_store set, reads and writes "
                            "share one bucket at this rate. Empty: the documented per-action limits."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "5",
                        "default": "",
                    },
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "dataworks",
                "hook-class-name": "airflow_provider_dataworks.hooks.dataworks.DataWorksHook",
                "hook-name": "Alibaba Cloud DataWorks",
                "ui-field-behaviour": ui_field_behaviour_info(),
                "conn-fields": conn_fields(),
            }
        ],
    }
