"""ACS3-signed DataWorks calls over one ``aiohttp`` session, without the SDK or Airflow.

Signing uses the emulator's signer (:func:`airflow_provider_dataworks.testing.signature.sign_acs3_headers`),
so the emulator does the full signature, timestamp and nonce work of an SDK request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from airflow_provider_dataworks.testing.signature import sign_acs3_headers


class RawApiError(RuntimeError):
    """A non-200 answer to a raw request."""


class RawClient:
    """Signed DataWorks calls over a caller-owned ``aiohttp`` session."""

    def __init__(
        self, session: aiohttp.ClientSession, protocol: str, endpoint: str, access_key_id: str, secret: str
    ) -> None:
        self.session = session
        self.base = f"{protocol}://{endpoint}/"
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self.secret = secret

    async def call(
        self, method: str, action: str, query: Mapping[str, str] | None = None, form: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Send one signed request; return the JSON body or raise :class:`RawApiError`."""
        query = dict(query or {})
        body = urlencode(dict(form)).encode() if form else b""
        headers = sign_acs3_headers(
            method=method,
            host=self.endpoint,
            action=action,
            query=query,
            body=body,
            access_key_id=self.access_key_id,
            access_key_secret=self.secret,
            content_type="application/x-www-form-urlencoded" if body else None,
        )
        async with self.session.request(
            method, self.base, params=query or None, data=body or None, headers=headers
        ) as response:
            raw = await response.read()
            status = response.status
        payload: dict[str, Any] = json.loads(raw) if raw else {}
        if status != 200:
            raise RawApiError(f"{action}: HTTP {status} {payload.get('Code')}: {payload.get('Message')}")
        return payload

    async def get_pipeline_run(self, project_id: int, run_id: str) -> dict[str, Any]:
        return await self.call("GET", "GetPipelineRun", {"ProjectId": str(project_id), "Id": run_id})

    async def create_pipeline_run(self, project_id: int, object_id: str, description: str = "") -> str:
        form = {"ProjectId": str(project_id), "Type": "Online", "ObjectIds": json.dumps([object_id])}
        if description:
            form["Description"] = description
        body = await self.call("POST", "CreatePipelineRun", form=form)
        return str(body["Id"])

    async def exec_stage(self, project_id: int, run_id: str, code: str) -> None:
        await self.call("POST", "ExecPipelineRunStage", {"ProjectId": str(project_id)}, {"Id": run_id, "Code": code})
