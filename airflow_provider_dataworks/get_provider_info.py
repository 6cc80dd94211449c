"""Provider metadata read by Airflow's providers manager (``apache_airflow_provider`` entry point).

Airflow 3.2+ builds the connection form from ``conn-fields`` and ``ui-field-behaviour``
without importing the hook, so opening the form never imports the Alibaba SDK. Older versions
ask the hook; both come from :mod:`airflow_provider_dataworks.connection_form`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_dataworks import __version__
from airflow_provider_dataworks.connection_form import conn_fields, ui_field_behaviour_info


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
        "extra-links": ["airflow_provider_dataworks.operators.pipeline_run.DataWorksPipelineRunLink"],
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
