"""Seed documents: the workspaces, objects and credentials an emulator starts with.

A seed is JSON::

    {"projects": [{"id": 10000, "name": "demo_basic", "mode": "basic" | "standard",
                   "objects": [{"id": "86...", "name": "...", "type": "Node" | "WorkflowDefinition"
                                | "Resource" | "Function", "children": [...], "deployed": false,
                                "fail_at_stage": "PROD_CHECK", "fail_message": "...",
                                "approval_stages": ["PROD_CHECK"],
                                "stages": [{"code": "BUILD_PACKAGE", "type": "Build"}, ...]}]}],
     "credentials": [{"access_key_id": "...", "access_key_secret": "...", "security_token": null,
                      "account_id": "1379463177660000", "projects": [10000]}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .auth import Credential
from .state import Project

SeedSource = str | Path | Mapping[str, Any] | None


def default_seed() -> dict[str, Any]:
    """Return the seed shipped with the package (``default_seed.json``)."""
    text = resources.files(__package__).joinpath("default_seed.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_seed(source: SeedSource) -> dict[str, Any]:
    """Return a validated seed document from a file path, a mapping, or ``None`` (the default seed).

    :raises ValueError: when the document is not a valid seed.
    """
    if source is None:
        data = default_seed()
    elif isinstance(source, Mapping):
        data = json.loads(json.dumps(source))
    else:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a seed must be a JSON object with 'projects' and optional 'credentials'")
    data.setdefault("projects", [])
    data.setdefault("credentials", [])
    try:
        for project in data["projects"]:
            Project.from_json(project)
        for credential in data["credentials"]:
            Credential.from_json(credential)
    except (KeyError, TypeError) as err:
        raise ValueError(f"invalid seed: {err!r}") from err
    return data


def seed_credentials(seed: Mapping[str, Any]) -> list[Credential]:
    """Return the credentials a seed declares."""
    return [Credential.from_json(c) for c in seed.get("credentials", ())]
