"""Status vocabulary and the stage templates of DataWorks pipeline runs.

Templates follow what DataWorks shows per workspace mode: a basic workspace deploys straight
to production, a standard one deploys to development first. The first stage of every template
(package build, or the undeploy pre-check) runs by itself; the others wait for
``ExecPipelineRunStage``. An object may bring its own stage list instead (:func:`custom_stages`),
e.g. a template with a ``Delete`` stage before its deploy stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INIT = "Init"
RUNNING = "Running"
SUCCESS = "Success"
FAIL = "Fail"
TERMINATION = "Termination"
CANCEL = "Cancel"

#: Every status a run or a stage can report, spelled as DataWorks spells them.
STATUSES = (INIT, RUNNING, SUCCESS, FAIL, TERMINATION, CANCEL)
#: Statuses in which a run still moves.
ACTIVE = frozenset({INIT, RUNNING})

ONLINE = "Online"
OFFLINE = "Offline"
RUN_TYPES = (ONLINE, OFFLINE)

#: Stage types, as the SDK's ``Stages[].Type`` documents them.
STAGE_TYPES = ("Build", "Check", "Deploy", "Offline", "Delete")

NORMAL = "Normal"
AUTO = "Auto"
RUN_MODES = (NORMAL, AUTO)

BASIC = "basic"
STANDARD = "standard"
MODES = (BASIC, STANDARD)


@dataclass(frozen=True)
class StageTemplate:
    """One stage of a run as DataWorks describes it.

    :param self_running: the stage starts with the run, nobody has to execute it.
    """

    code: str
    type: str
    name: str
    description: str
    self_running: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageTemplate:
        """Build a stage from its seed-file form: ``code``, ``type``, optional ``name``,
        ``description`` and ``self_running`` (default: true for a ``Build`` stage only)."""
        code, stage_type = str(data.get("code") or ""), str(data.get("type") or "")
        if not code:
            raise ValueError(f"a stage needs a code: {dict(data)!r}")
        if stage_type not in STAGE_TYPES:
            raise ValueError(f"stage type must be one of {STAGE_TYPES}, not {stage_type!r}")
        self_running = data.get("self_running")
        return cls(
            code=code,
            type=stage_type,
            name=str(data.get("name") or code),
            description=str(data.get("description") or f"{stage_type} stage {code}"),
            self_running=stage_type == "Build" if self_running is None else bool(self_running),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the seed-file form of this stage."""
        return {
            "code": self.code,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "self_running": self.self_running,
        }


_BUILD = StageTemplate(
    "BUILD_PACKAGE", "Build", "Publish package build", "Build the deployment package", self_running=True
)
_DEV_CHECK = StageTemplate(
    "DEV_CHECK", "Check", "Development check", "Checks before deploying to the development environment"
)
_DEV = StageTemplate("DEV", "Deploy", "Deploy to development", "Deploy to the development environment")
_PROD_CHECK = StageTemplate(
    "PROD_CHECK", "Check", "Production check", "Checks before deploying to the production environment"
)
_PROD = StageTemplate("PROD", "Deploy", "Deploy to production", "Deploy to the production environment")
_OFFLINE_CHECK = StageTemplate(
    "OfflineCheck", "Check", "Undeploy check", "Checks before undeploying", self_running=True
)
_PROD_OFFLINE = StageTemplate("PROD", "Offline", "Undeploy from production", "Undeploy from production")

_TEMPLATES: dict[tuple[str, str], tuple[StageTemplate, ...]] = {
    (ONLINE, BASIC): (_BUILD, _PROD_CHECK, _PROD),
    (ONLINE, STANDARD): (_BUILD, _DEV_CHECK, _DEV, _PROD_CHECK, _PROD),
    (OFFLINE, BASIC): (_OFFLINE_CHECK, _PROD_CHECK, _PROD_OFFLINE),
    (OFFLINE, STANDARD): (_OFFLINE_CHECK, _PROD_CHECK, _PROD_OFFLINE),
}


def template_for(run_type: str, mode: str) -> tuple[StageTemplate, ...]:
    """Return the stages of a ``run_type`` run in a workspace of ``mode``."""
    return _TEMPLATES[(run_type, mode)]


def custom_stages(data: Iterable[Mapping[str, Any]]) -> tuple[StageTemplate, ...]:
    """Return an object's own stage list (seed-file form), checked: not empty, codes unique."""
    stages = tuple(StageTemplate.from_json(d) for d in data)
    codes = [s.code for s in stages]
    if not stages:
        raise ValueError("a custom stage list needs at least one stage")
    if len(set(codes)) != len(codes):
        raise ValueError(f"stage codes must be unique, not {codes}")
    return stages
