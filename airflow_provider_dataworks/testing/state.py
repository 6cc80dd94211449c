"""What the emulated DataWorks holds: workspaces, deployable objects, pipeline runs.

Stage progress is derived from the clock when a run is looked at (:meth:`EmulatorState.advance`),
never by a task or a thread per run, so thousands of idle runs cost nothing. A stage records
when it started and how long it takes; reading the run replays every transition whose time
has come, chaining the stages that start by themselves.

Listing is indexed so that a page costs the same whatever a workspace holds: runs are kept per
(workspace, status) in creation order, and every active run whose next transition is timed
(its ``Init`` ends, its running stage finishes) sits in its workspace's heap by that time. A
listing first replays only the workspace's runs whose time has come (:meth:`EmulatorState.catch_up`),
which leaves every run exactly as advancing all of them would, then slices the page out of the index.
"""

from __future__ import annotations

import bisect
import heapq
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from . import errors
from .data_quality import DataQualityState
from .stages import (
    ACTIVE,
    AUTO,
    BASIC,
    FAIL,
    INIT,
    MODES,
    OFFLINE,
    ONLINE,
    RUNNING,
    SUCCESS,
    TERMINATION,
    StageTemplate,
    custom_stages,
    template_for,
)

OBJECT_TYPES = ("Node", "WorkflowDefinition", "Resource", "Function")


def to_ms(seconds: float) -> int:
    """Return epoch ``seconds`` as the epoch milliseconds DataWorks reports."""
    return int(seconds * 1000)


@dataclass
class DwObject:
    """A deployable Data Studio object (a node, a workflow with its child nodes, ...)."""

    id: str
    name: str
    type: str = "Node"
    children: list[DwObject] = field(default_factory=list)
    deployed: bool = False
    fail_at_stage: str | None = None
    fail_message: str | None = None
    approval_stages: frozenset[str] = frozenset()
    version: int = 0
    #: how long each stage of this object's runs takes; ``None``: the emulator's ``stage_seconds``
    stage_seconds: float | None = None
    #: the stages of this object's runs, in order; ``None``: the workspace mode's template
    stages: tuple[StageTemplate, ...] | None = None
    create_time: float = field(default_factory=time.time)
    modify_time: float = field(default_factory=time.time)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DwObject:
        """Build an object from its seed-file form."""
        obj_type = str(data.get("type", "Node"))
        if obj_type not in OBJECT_TYPES:
            raise ValueError(f"object type must be one of {OBJECT_TYPES}, not {obj_type!r}")
        deployed = bool(data.get("deployed", False))
        stage_seconds = data.get("stage_seconds")
        stages = data.get("stages")
        if stage_seconds is not None and (isinstance(stage_seconds, bool) or float(stage_seconds) < 0):
            raise ValueError(f"stage_seconds must be a number >= 0, not {stage_seconds!r}")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or f"object_{data['id']}"),
            type=obj_type,
            children=[DwObject.from_json({"deployed": deployed, **c}) for c in data.get("children", ())],
            deployed=deployed,
            fail_at_stage=data.get("fail_at_stage") or None,
            fail_message=data.get("fail_message") or None,
            approval_stages=frozenset(data.get("approval_stages") or ()),
            version=int(data.get("version", 1 if deployed else 0)),
            stage_seconds=None if stage_seconds is None else float(stage_seconds),
            stages=None if stages is None else custom_stages(stages),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the seed-file form of this object, with its current deployed state."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "children": [c.to_json() for c in self.children],
            "deployed": self.deployed,
            "fail_at_stage": self.fail_at_stage,
            "fail_message": self.fail_message,
            "approval_stages": sorted(self.approval_stages),
            "version": self.version,
            "stage_seconds": self.stage_seconds,
            "stages": None if self.stages is None else [s.to_json() for s in self.stages],
        }

    def family(self) -> list[DwObject]:
        """Return this object followed by its children: what one run deploys."""
        return [self, *self.children]

    def stage_templates(self, run_type: str, mode: str) -> tuple[StageTemplate, ...]:
        """Return the stages of this object's ``run_type`` runs in a workspace of ``mode``."""
        return self.stages if self.stages is not None else template_for(run_type, mode)


@dataclass
class Project:
    """A DataWorks workspace: its mode decides the stage template of its runs."""

    id: int
    name: str
    mode: str = BASIC
    display_name: str = ""
    objects: dict[str, DwObject] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Project:
        """Build a workspace (and its objects) from its seed-file form."""
        mode = str(data.get("mode", BASIC)).lower()
        if mode not in MODES:
            raise ValueError(f"project mode must be one of {MODES}, not {mode!r}")
        project = cls(
            id=int(data["id"]),
            name=str(data.get("name") or f"project_{data['id']}"),
            mode=mode,
            display_name=str(data.get("display_name") or data.get("name") or ""),
        )
        for obj in data.get("objects", ()):
            project.add(DwObject.from_json(obj))
        return project

    def add(self, obj: DwObject) -> None:
        """Add or replace a deployable object."""
        self.objects[obj.id] = obj


@dataclass
class Stage:
    """One stage of one run, with the times it started and finished (epoch seconds)."""

    template: StageTemplate
    step: int
    status: str = INIT
    message: str = ""
    start: float | None = None
    finish: float | None = None
    duration: float = 0.0
    planned_failure: str | None = None
    needs_approval: bool = False
    approved: bool = False
    queued: bool = False
    #: running, but held until a person approves it: it does not finish while held
    held: bool = False
    #: when its duration started counting: its start, or the approval that released the hold
    timer_start: float | None = None
    #: how often this stage was asked to start: by itself, by ``ExecPipelineRunStage`` (refused ones too)
    start_requests: int = 0

    @property
    def code(self) -> str:
        """The stage code used by ``ExecPipelineRunStage``."""
        return self.template.code

    @property
    def awaiting_approval(self) -> bool:
        """Whether the stage runs but waits for a person's approval before it can finish."""
        return self.held and self.status == RUNNING

    @property
    def end(self) -> float | None:
        """When the running stage finishes, if it is running and not held."""
        if self.status != RUNNING or self.held or self.timer_start is None:
            return None
        return self.timer_start + self.duration


@dataclass
class Run:
    """A pipeline run (deployment process) and what it was created from."""

    id: str
    project_id: int
    object_ids: list[str]
    object: DwObject
    type: str
    description: str
    run_mode: str
    auto_run_until: str | None
    creator: str
    access_key_id: str
    create_time: float
    stages: list[Stage]
    request_id: str
    action: str
    seq: int
    status: str = RUNNING
    message: str = ""
    modify_time: float = 0.0
    target_version: int = 0
    #: while set, the run is ``Init`` (being prepared); its first stage starts at this time
    init_until: float | None = None
    #: who terminated the run: ``"api"`` (``AbolishPipelineRun``), ``"console"`` (a person), or nobody
    abolished_by: str | None = None

    def stage(self, code: str) -> Stage | None:
        """Return the stage with ``code``, if the run has one."""
        return next((s for s in self.stages if s.code == code), None)

    def next_stage(self) -> Stage | None:
        """Return the first stage that has not succeeded yet."""
        return next((s for s in self.stages if s.status != SUCCESS), None)


class EmulatorState:
    """Workspaces, objects and runs, with the rules that move runs forward.

    :param seed: the seed document (see ``docs/emulator.md``); :meth:`reset` returns to it.
    :param stage_seconds: how long every stage takes once started.
    :param clock: returns the current epoch time in seconds.
    :param init_seconds: how long a new run reports ``Init`` (run and stages) before its first
        stage starts.
    """

    def __init__(
        self,
        seed: Mapping[str, Any],
        stage_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        init_seconds: float = 0.0,
    ) -> None:
        self.seed = seed
        self.stage_seconds = stage_seconds
        self.init_seconds = init_seconds
        self.clock = clock
        self.projects: dict[int, Project] = {}
        self.runs: dict[str, Run] = {}
        self.project_runs: dict[int, list[Run]] = {}
        self._seq = 0
        self._by_status: dict[tuple[int, str], list[Run]] = {}
        self._indexed_status: dict[str, str] = {}
        self._due: dict[int, list[tuple[float, int, Run]]] = {}
        self._due_at: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every run and restore the seed's workspaces and objects."""
        self.projects = {}
        for data in self.seed.get("projects", ()):
            project = Project.from_json(data)
            self.projects[project.id] = project
        self.runs = {}
        self.project_runs = {}
        self._by_status = {}
        self._indexed_status = {}
        self._due = {}
        self._due_at = {}
        self.data_quality = DataQualityState.from_seed(self.seed, self.clock, lambda: self.stage_seconds)

    def project(self, project_id: int) -> Project:
        """Return workspace ``project_id`` or raise ``Forbidden.Access``."""
        project = self.projects.get(project_id)
        if project is None:
            raise errors.forbidden_project(project_id)
        return project

    def ensure_project(self, project_id: int, name: str | None = None, mode: str | None = None) -> Project:
        """Return workspace ``project_id``, creating it when it does not exist."""
        project = self.projects.get(project_id)
        if project is None:
            project = Project.from_json({"id": project_id, "name": name, "mode": mode or BASIC})
            self.projects[project_id] = project
        return project

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        project: Project,
        obj: DwObject,
        object_ids: list[str],
        run_type: str,
        description: str,
        run_mode: str,
        auto_run_until: str | None,
        creator: str,
        access_key_id: str,
        request_id: str,
        action: str,
    ) -> Run:
        """Create a run of ``obj``: ``Init`` for :attr:`init_seconds`, then its first stage starts."""
        now = self.clock()
        templates = obj.stage_templates(run_type, project.mode)
        stages = [Stage(template=t, step=i) for i, t in enumerate(templates, 1)]
        for stage in stages:
            stage.needs_approval = stage.code in obj.approval_stages
            if obj.fail_at_stage == stage.code:
                stage.planned_failure = obj.fail_message or f"Stage {stage.code} failed."
        if run_type == OFFLINE and not obj.deployed:
            stages[
                0
            ].planned_failure = f"发布对象未发布，无法下线: {obj.name} ({obj.id}) is not deployed, nothing to undeploy."
        self._seq += 1
        run = Run(
            id=str(uuid.uuid4()),
            project_id=project.id,
            object_ids=object_ids,
            object=obj,
            type=run_type,
            description=description,
            run_mode=run_mode,
            auto_run_until=auto_run_until,
            creator=creator,
            access_key_id=access_key_id,
            create_time=now,
            modify_time=now,
            stages=stages,
            request_id=request_id,
            action=action,
            seq=self._seq,
            target_version=obj.version + 1 if run_type == ONLINE else obj.version,
        )
        self.runs[run.id] = run
        self.project_runs.setdefault(project.id, []).append(run)
        if self.init_seconds > 0:
            run.status = INIT
            run.init_until = now + self.init_seconds
        else:
            self._start(run, stages[0], now)
        self.advance(run)
        return run

    def get_run(self, project_id: int, run_id: str) -> Run:
        """Return run ``run_id`` of workspace ``project_id``, brought up to date."""
        run = self.runs.get(run_id)
        if run is None or run.project_id != project_id:
            raise errors.run_not_found(run_id)
        self.advance(run)
        return run

    def exec_stage(self, run: Run, code: str) -> None:
        """Start stage ``code`` of ``run`` on a caller's request (``ExecPipelineRunStage``)."""
        self.advance(run)
        if run.status != RUNNING:
            # An Init run is still being prepared: it is not running yet either.
            raise errors.not_running()
        stage = run.stage(code)
        if stage is None:
            raise errors.invalid_parameter("Code", code, "The run has no stage with this code.")
        stage.start_requests += 1
        expected = run.next_stage()
        if stage is not expected or stage.status != INIT:
            raise errors.stage_order(code, expected.code if expected and expected.status == INIT else None)
        # An approval stage is accepted too: it then runs, held until a person approves it.
        self._start(run, stage, self.clock(), requested=True)
        self.advance(run)

    def approve(self, run: Run, code: str, start: bool = True) -> None:
        """Approve stage ``code`` as a console user would.

        A stage held ``Running`` for approval is released: its duration runs from now. A stage not
        started yet is approved ahead of its turn.

        :param start: for a stage not started yet: the approval also starts it as soon as it is its
            turn (the console's "approve and run"); otherwise the approval only lifts the hold and
            the stage still waits for ``ExecPipelineRunStage`` (then runs normally).
        """
        self.advance(run)
        stage = run.stage(code)
        if stage is None:
            raise errors.invalid_parameter("stage", code, "The run has no stage with this code.")
        if run.status not in ACTIVE:
            raise errors.not_running()
        stage.approved = True
        if stage.awaiting_approval:
            now = self.clock()
            stage.held = False
            stage.timer_start = now
            run.modify_time = now
            self.advance(run)
            return
        if stage.status != INIT or not start:
            return
        if run.next_stage() is stage and run.status == RUNNING:
            self._start(run, stage, self.clock())
            self.advance(run)
        else:
            stage.queued = True

    def abolish(self, run: Run, by: str = "api") -> None:
        """Terminate ``run`` (``AbolishPipelineRun``: "changes the status of the process to Terminated").

        :param by: ``"api"`` (``AbolishPipelineRun``) or ``"console"`` (a person in the console):
            the same effect, recorded as the run's ``abolished_by``.
        """
        self.advance(run)
        if run.status not in ACTIVE:
            raise errors.not_running()
        now = self.clock()
        for stage in run.stages:
            if stage.status == RUNNING:
                stage.status = TERMINATION
                stage.finish = now
        run.status = TERMINATION
        run.init_until = None
        run.modify_time = now
        run.abolished_by = by
        self._reindex(run)

    def advance(self, run: Run) -> None:
        """Replay every stage transition of ``run`` whose time has come."""
        self._replay(run)
        self._reindex(run)

    def catch_up(self, project_id: int) -> None:
        """Replay the transitions of every run of workspace ``project_id`` whose time has come.

        Leaves those runs as :meth:`advance` on each run of the workspace, newest first (as a
        listing used to walk them), would, at the cost of the runs that actually move: a run
        waiting for ``ExecPipelineRunStage`` is not in the heap. The order matters only when runs
        of one object finish together: the last one replayed sets the object's state.
        """
        now = self.clock()
        heap = self._due.get(project_id, [])
        due_runs = []
        while heap and heap[0][0] <= now:
            due, _, run = heapq.heappop(heap)
            if self._due_at.get(run.id) == due:  # otherwise a stale entry: the run moved since
                del self._due_at[run.id]
                due_runs.append(run)
        for run in sorted(due_runs, key=_seq, reverse=True):
            self.advance(run)

    def _replay(self, run: Run) -> None:
        if run.status not in ACTIVE:
            return
        now = self.clock()
        if run.init_until is not None:
            if now < run.init_until:
                return
            start, run.init_until = run.init_until, None
            self._start(run, run.stages[0], start)
        while True:
            stage = next((s for s in run.stages if s.status == RUNNING), None)
            end = None if stage is None else stage.end
            if stage is None or end is None or now < end:
                return
            stage.finish = end
            run.modify_time = end
            if stage.planned_failure is not None:
                stage.status = FAIL
                stage.message = stage.planned_failure
                run.status = FAIL
                run.message = stage.planned_failure
                return
            stage.status = SUCCESS
            following = run.next_stage()
            if following is None:
                run.status = SUCCESS
                self._apply_success(run, end)
                return
            if not self._starts_by_itself(run, following):
                return
            self._start(run, following, end)

    def _starts_by_itself(self, run: Run, stage: Stage) -> bool:
        # An unapproved approval stage started here is held by _start, as when it is executed.
        if stage.queued or stage.template.self_running:
            return True
        if run.run_mode != AUTO:
            return False
        if run.auto_run_until is None:
            return True
        until = run.stage(run.auto_run_until)
        return until is not None and stage.step <= until.step

    def _start(self, run: Run, stage: Stage, at: float, *, requested: bool = False) -> None:
        if not requested:
            stage.start_requests += 1
        stage.status = RUNNING
        stage.start = stage.timer_start = at
        stage.held = stage.needs_approval and not stage.approved
        stage.duration = self.stage_seconds if run.object.stage_seconds is None else run.object.stage_seconds
        run.status = RUNNING
        run.modify_time = at

    def _apply_success(self, run: Run, at: float) -> None:
        deployed = run.type == ONLINE
        for obj in run.object.family():
            obj.deployed = deployed
            obj.modify_time = at
            if deployed:
                obj.version = run.target_version

    @staticmethod
    def _next_transition(run: Run) -> float | None:
        """Return when ``run`` moves by itself next (as :meth:`_replay` sees it), if it does."""
        if run.status not in ACTIVE:
            return None
        if run.init_until is not None:
            return run.init_until
        stage = next((s for s in run.stages if s.status == RUNNING), None)
        return None if stage is None else stage.end

    def _reindex(self, run: Run) -> None:
        """File ``run`` under its current status and its next timed transition."""
        indexed = self._indexed_status.get(run.id)
        # Sorted lists, not a sorted container: insort/del only move pointers (microseconds at
        # 10,000 runs), and no such library is in Airflow's or the SDK's dependency tree.
        if indexed != run.status:
            if indexed is not None:
                runs = self._by_status[(run.project_id, indexed)]
                del runs[bisect.bisect_left(runs, run.seq, key=_seq)]
            bisect.insort(self._by_status.setdefault((run.project_id, run.status), []), run, key=_seq)
            self._indexed_status[run.id] = run.status
        due = self._next_transition(run)
        if due != self._due_at.get(run.id):
            # A superseded heap entry stays behind; catch_up() skips it.
            if due is None:
                del self._due_at[run.id]
            else:
                self._due_at[run.id] = due
                heapq.heappush(self._due.setdefault(run.project_id, []), (due, run.seq, run))

    def list_runs(self, project_id: int, status: str | None = None) -> Sequence[Run]:
        """Return the runs of workspace ``project_id`` (with ``status`` only), newest first, up to date.

        The result is a view of the index: slice or count it before the state changes again.
        """
        self.catch_up(project_id)
        if status is None:
            return NewestFirst(self.project_runs.get(project_id, []))
        return NewestFirst(self._by_status.get((project_id, status), []))

    def all_runs(self) -> list[Run]:
        """Return every run, oldest first, brought up to date."""
        runs = sorted(self.runs.values(), key=_seq)
        for run in runs:
            self.advance(run)
        return runs


def _seq(run: Run) -> int:
    return run.seq


class NewestFirst(Sequence[Run]):
    """A newest-first view of runs kept oldest first: a page is sliced without copying the rest."""

    def __init__(self, oldest_first: list[Run]) -> None:
        self._runs = oldest_first

    def __len__(self) -> int:
        return len(self._runs)

    @overload
    def __getitem__(self, index: int) -> Run: ...

    @overload
    def __getitem__(self, index: slice) -> list[Run]: ...

    def __getitem__(self, index: int | slice) -> Run | list[Run]:
        last = len(self._runs) - 1
        if isinstance(index, slice):
            return [self._runs[last - i] for i in range(len(self._runs))[index]]
        return self._runs[last - range(len(self._runs))[index]]
