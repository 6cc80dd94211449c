"""Helpers for the emulator tests: workspace/object IDs of the default seed, and SDK wrappers."""

from __future__ import annotations

import asyncio
from typing import Any

from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client
from alibabacloud_tea_openapi.utils_models import Config, OpenApiRequest, Params
from darabonba.runtime import RuntimeOptions

from airflow_provider_dataworks.testing import DataWorksEmulator

BASIC_PROJECT = 10000
STANDARD_PROJECT = 20000
WORKFLOW = "8600000000000000001"
WORKFLOW_CHILD = "8600000000000000011"
NODE = "8600000000000000002"
DEPLOYED_NODE = "8600000000000000004"
APPROVAL_NODE = "8600000000000000005"
BROKEN_NODE = "8600000000000000009"
STD_WORKFLOW = "8600000000000000021"

#: (use _async methods, signature_algorithm)
FLAVOURS = [(False, None), (True, None), (False, "v2"), (True, "v2")]
FLAVOUR_IDS = ["sync-v3", "async-v3", "sync-v2", "async-v2"]


class Sdk:
    """One SDK client plus the way to call it (sync or ``_async``)."""

    def __init__(self, client: Client, use_async: bool) -> None:
        self.client = client
        self.use_async = use_async

    def __call__(self, method: str, request: Any) -> Any:
        """Call ``client.<method>`` (or ``<method>_async``) and return the response."""
        if self.use_async:
            return asyncio.run(getattr(self.client, f"{method}_async")(request))
        return getattr(self.client, method)(request)

    def raw(self, action: str, method: str, query: dict[str, Any] | None = None, body: Any = None) -> dict:
        """Call any action by name through the SDK's generic ``call_api``."""
        params = Params(
            action=action,
            version="2024-05-18",
            protocol="HTTPS",
            pathname="/",
            method=method,
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        request = OpenApiRequest(query=query, body=body)
        if self.use_async:
            return asyncio.run(self.client.call_api_async(params, request, RuntimeOptions()))
        return self.client.call_api(params, request, RuntimeOptions())

    # Shortcuts used by many tests.
    def create(self, object_id: str = NODE, project_id: int = BASIC_PROJECT, **kwargs: Any) -> str:
        request = models.CreatePipelineRunRequest(
            project_id=project_id, type=kwargs.pop("type", "Online"), object_ids=[object_id], **kwargs
        )
        return str(self("create_pipeline_run", request).body.id)

    def get(self, run_id: str, project_id: int = BASIC_PROJECT) -> models.GetPipelineRunResponseBodyPipeline:
        return self("get_pipeline_run", models.GetPipelineRunRequest(project_id=project_id, id=run_id)).body.pipeline

    def exec(self, run_id: str, code: str, project_id: int = BASIC_PROJECT) -> bool:
        request = models.ExecPipelineRunStageRequest(project_id=project_id, id=run_id, code=code)
        return bool(self("exec_pipeline_run_stage", request).body.success)


def make_client(emulator: DataWorksEmulator, signature_algorithm: str | None = None, **config: Any) -> Client:
    """Return a real SDK client pointed at ``emulator``."""
    settings: dict[str, Any] = {
        "access_key_id": emulator.access_key_id,
        "access_key_secret": emulator.access_key_secret,
        "endpoint": emulator.endpoint,
        "protocol": emulator.protocol,
        "region_id": "cn-hangzhou",
        "signature_algorithm": signature_algorithm,
        **config,
    }
    return Client(Config(**settings))
