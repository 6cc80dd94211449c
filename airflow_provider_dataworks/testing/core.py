"""The emulator's moving parts in one place, and the control operations on them.

:class:`EmulatorCore` owns the state, the credentials, the pending faults and the call log.
Both the HTTP control API (``/_emulator/...``) and the in-process :class:`DataWorksEmulator`
go through :meth:`EmulatorCore.control`, so they cannot drift apart. It is not thread-safe:
everything runs on the server's event loop.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import data_quality, errors, sts
from .auth import Authenticator, Credential
from .faults import Fault, FaultQueue
from .quota import Quota
from .seed import seed_credentials
from .shapes import SHAPE_KEYS, Shapes
from .state import DwObject, EmulatorState, Run, to_ms

DEFAULT_ACCESS_KEY_ID = "dataworks-emulator-ak"
DEFAULT_ACCESS_KEY_SECRET = "dataworks-emulator-secret"
#: How long a new run reports ``Init`` by default: long enough to be seen, short enough for tests.
DEFAULT_INIT_SECONDS = 0.05
#: How many API calls the call log keeps (the per-action counters keep counting past it).
CALL_LOG_SIZE = 100_000


@dataclass
class Settings:
    """What an emulator is started with.

    :param seed: the seed document (see :mod:`.seed`).
    :param credentials: credentials accepted besides the seed's.
    :param stage_seconds: how long every stage takes once started.
    :param object_not_found_code: the error code of the "未找到发布对象" answer.
    :param init_seconds: how long a new run reports ``Init`` before its first stage starts.
    :param list_stages: ``ListPipelineRuns`` rows carry ``"full"`` stages, ``"missing"`` (no key)
        or ``"empty"`` (``[]``); see :mod:`.shapes`.
    :param description_limit: keep only this many characters of a run's ``Description``.
    :param max_page_size: serve at most this many rows a page of the run and run-item listings.
    """

    seed: Mapping[str, Any]
    credentials: list[Credential] = field(default_factory=list)
    stage_seconds: float = 1.0
    object_not_found_code: str = errors.OBJECT_NOT_FOUND_CODE
    init_seconds: float = DEFAULT_INIT_SECONDS
    #: enforced API quota (None: unlimited), see :mod:`.quota`
    read_qps: float | None = None
    write_qps: float | None = None
    qps: float | None = None
    list_stages: str = "full"
    description_limit: int | None = None
    max_page_size: int | None = None

    def shapes(self) -> Shapes:
        """Return the answer shapes these settings start with."""
        return Shapes(self.list_stages, self.description_limit, self.max_page_size)


def run_record(run: Run) -> dict[str, Any]:
    """Return the control-API view of a run (snake_case, times in epoch milliseconds)."""
    obj = run.object
    return {
        "id": run.id,
        "project_id": run.project_id,
        "object_id": obj.id,
        "object_ids": list(run.object_ids),
        "object": {
            "id": obj.id,
            "name": obj.name,
            "type": obj.type,
            "deployed": obj.deployed,
            "children": [c.id for c in obj.children],
        },
        "type": run.type,
        "description": run.description,
        "run_mode": run.run_mode,
        "auto_run_until_stage": run.auto_run_until,
        "creator": run.creator,
        "access_key_id": run.access_key_id,
        "status": run.status,
        "message": run.message,
        "create_time": to_ms(run.create_time),
        "modify_time": to_ms(run.modify_time),
        "request_id": run.request_id,
        "created_by_action": run.action,
        "abolished_by": run.abolished_by,
        "stages": [
            {
                "code": s.code,
                "step": s.step,
                "type": s.template.type,
                "name": s.template.name,
                "status": s.status,
                "message": s.message,
                "start_time": None if s.start is None else to_ms(s.start),
                "finish_time": None if s.finish is None else to_ms(s.finish),
                "needs_approval": s.needs_approval,
                "approved": s.approved,
                "awaiting_approval": s.awaiting_approval,
                "start_requests": s.start_requests,
            }
            for s in run.stages
        ],
    }


def _flag(value: Any) -> bool:
    """A JSON or query-string boolean."""
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "")
    return bool(value)


class EmulatorCore:
    """State, credentials, faults and call log of one emulator.

    :param clock: returns the current epoch time in seconds (tests may move it).
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.state = EmulatorState(settings.seed, settings.stage_seconds, clock, settings.init_seconds)
        self.auth = Authenticator(clock=clock)
        self.faults = FaultQueue()
        self.sts = sts.StsService()
        self.quota = Quota(settings.read_qps, settings.write_qps, settings.qps)
        self.shapes = settings.shapes()
        # Tuples, not dicts: under benchmark load the log holds 100k entries.
        self.calls: deque[tuple[str, int, str | None, float, str, str | None]] = deque(maxlen=CALL_LOG_SIZE)
        self.call_counts: Counter[str] = Counter()
        self.info: dict[str, Any] = {}
        self._load_credentials()

    def _load_credentials(self) -> None:
        self.auth.credentials.clear()
        for credential in [*self.settings.credentials, *seed_credentials(self.settings.seed)]:
            self.auth.add(credential)

    def record_call(self, action: str, status: int, code: str | None, request_id: str, fault: str | None) -> None:
        """Append one API call to the log."""
        self.calls.append((action, status, code, self.clock(), request_id, fault))
        self.call_counts[action] += 1

    # --- control operations -------------------------------------------------------------------

    def control(self, operation: str, payload: Mapping[str, Any]) -> Any:
        """Run control ``operation`` with a JSON ``payload``; return a JSON-able result.

        :raises errors.ApiError: for an unknown run or stage, or a run that is not running.
        :raises ValueError: for a malformed payload.
        """
        handler = getattr(self, f"_op_{operation}", None)
        if handler is not None:
            return handler(payload)
        if operation in sts.CONTROL_OPS:
            return sts.CONTROL_OPS[operation](self, payload)
        raise ValueError(f"unknown control operation {operation!r}")

    def _op_info(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **self.info,
            "stage_seconds": self.state.stage_seconds,
            "init_seconds": self.state.init_seconds,
            "quota": self.quota.to_json(),
            **self.shapes.to_json(),
        }

    def _op_runs(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        object_id = payload.get("object_id")
        project_id = payload.get("project_id")
        return [
            run_record(run)
            for run in self.state.all_runs()
            if (object_id is None or run.object.id == str(object_id))
            and (project_id is None or run.project_id == int(project_id))
        ]

    def _op_calls(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if payload.get("counts_only"):
            return {"calls": [], "counts": dict(self.call_counts)}
        action = payload.get("action")
        calls = [
            {"action": a, "status": s, "code": c, "time": t, "request_id": r, "fault": f}
            for a, s, c, t, r, f in self.calls
            if action is None or a == action
        ]
        return {"calls": calls, "counts": dict(self.call_counts)}

    def _op_add_fault(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        fault = Fault.from_json(payload)
        self.faults.add(fault, self.clock())
        return fault.to_json()

    def _op_faults(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.faults.pending(self.clock())]

    def _op_clear_faults(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.faults.clear()
        return {"ok": True}

    def _op_add_objects(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        project = self.state.ensure_project(
            int(payload["project_id"]), payload.get("project_name"), payload.get("mode")
        )
        objects = payload.get("objects") or [payload["object"]]
        added = [DwObject.from_json(o) for o in objects]
        for obj in added:
            project.add(obj)
        return [o.to_json() for o in added]

    def _op_objects(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        project = self.state.project(int(payload["project_id"]))
        return [o.to_json() for o in project.objects.values()]

    def _op_approve(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        run_id = str(payload["run_id"])
        run = self.state.runs.get(run_id)
        if run is None:
            raise errors.run_not_found(run_id)
        self.state.approve(run, str(payload["stage"]), start=_flag(payload.get("start", True)))
        return run_record(run)

    def _op_console_abolish(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        # A person's abolish in the console: AbolishPipelineRun's effect, without an API call.
        run_id = str(payload["run_id"])
        run = self.state.runs.get(run_id)
        if run is None:
            raise errors.run_not_found(run_id)
        self.state.abolish(run, by="console")
        return run_record(run)

    def _op_add_data_quality_task(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        task = data_quality.TaskSeed.from_json(payload)
        self.state.data_quality.add_task(task)
        return {"id": task.id, "project_id": task.project_id, "rules": len(task.rules)}

    def _op_data_quality_instances(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        now = self.clock()
        return [data_quality.instance_record(i, now) for i in self.state.data_quality.instances.values()]

    def _op_add_credential(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        credential = Credential.from_json(payload)
        self.auth.add(credential)
        return credential.to_json()

    def _op_settings(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if payload.get("stage_seconds") is not None:
            seconds = float(payload["stage_seconds"])
            if seconds < 0:
                raise ValueError("stage_seconds must be >= 0")
            self.state.stage_seconds = seconds
        if payload.get("init_seconds") is not None:
            seconds = float(payload["init_seconds"])
            if seconds < 0:
                raise ValueError("init_seconds must be >= 0")
            self.state.init_seconds = seconds
        # The shape settings take null (no limit): a key present means "set it".
        self.shapes = self.shapes.updated({k: payload[k] for k in SHAPE_KEYS if k in payload})
        return {
            "stage_seconds": self.state.stage_seconds,
            "init_seconds": self.state.init_seconds,
            **self.shapes.to_json(),
        }

    def _op_quota(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.quota.configure(payload)
        return self.quota.to_json()

    def _op_quota_counts(self, payload: Mapping[str, Any]) -> list[dict[str, int]]:
        return self.quota.per_second()

    def _op_reset(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.state.reset()
        self.state.stage_seconds = self.settings.stage_seconds
        self.state.init_seconds = self.settings.init_seconds
        self.shapes = self.settings.shapes()
        self.sts.reset()
        self.faults.clear()
        self.calls.clear()
        self.call_counts.clear()
        self.quota = Quota(self.settings.read_qps, self.settings.write_qps, self.settings.qps)
        self._load_credentials()
        return {"ok": True}
