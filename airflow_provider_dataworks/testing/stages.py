"""Status vocabulary and the stage templates of DataWorks pipeline runs.

Templates follow what DataWorks shows per workspace mode: a basic workspace deploys straight
to production, a standard one deploys to development first. The first stage of every template
(package build, or the undeploy pre-check) runs by itself; the others wait for
``ExecPipelineRunStage``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
