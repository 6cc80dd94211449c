"""The chaos run: many deployments at once while triggerers, workers and the scheduler die, and users intervene.

One pass, one thread: the chaos DAG run and every example DAG are triggered together and watched
once a second; each fault is injected the first time its precondition holds:

1. **triggerer** — once at least ``TRIGGERER_KILL_AT`` chaos deployments are deferred with a
   triggerer assigned, SIGKILL the triggerer holding most of them (from PostgreSQL's ``trigger``
   and ``job`` tables, matched to our process by the job's pid); then watch those triggers move.
2. **worker** — once a Celery worker holds at least two synchronous waits (a running
   ``deploy_sync`` whose task process is in that worker's tree and whose pipeline run exists) and
   no example task, SIGKILL its whole tree, then start it again. The scheduler fails those task
   instances after the heartbeat timeout and they retry, adopting their pipeline runs.
3. **scheduler** — right after the worker kill, SIGTERM the scheduler and start it again.
4. **clear** — once ``plan.clear_target`` succeeded, clear it through the REST API.
5. **mark failed** — after the triggerer kill, mark ``plan.fail_target`` (deferred) failed through
   the REST API; on Airflow 3.3+ the trigger's ``on_kill`` abolishes its run.

Everything the tests assert is collected into :class:`ChaosResult`; ``report`` is what
``build/e2e-prod-report.json`` holds.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from e2e.airflow_stack import TERMINAL_RUN_STATES, AirflowClient, AirflowStack
from e2e.example_runs import EXAMPLES, EmulatorRun, runs_for

from .services import PostgresServer

CHAOS_DAG_ID = "dataworks_chaos"
REPORT_PATH = Path(__file__).resolve().parents[2] / "build" / "e2e-prod-report.json"
SYNC_TASK = "deploy_sync"
DEFERRED_TASK = "deploy_deferred"
PROJECT_ID = 10000
#: how many chaos deployments must be deferred on a triggerer before one is killed
TRIGGERER_KILL_AT = 4
ACTIVE_RUN_STATUSES = frozenset({"Init", "Running"})
FAILED_RUN_STATUSES = frozenset({"Cancel", "Termination", "Fail"})


@dataclass(frozen=True)
class Deployment:
    """One mapped deploy task instance of the chaos DAG and the object it deploys."""

    task_id: str
    map_index: int
    object_id: str
    stage_seconds: float

    @property
    def key(self) -> str:
        return f"{self.task_id}[{self.map_index}]"

    @property
    def deferrable(self) -> bool:
        return self.task_id == DEFERRED_TASK


@dataclass(frozen=True)
class ChaosPlan:
    """The chaos DAG's deployments: half synchronous, half deferrable, stage durations spread out."""

    deployments: tuple[Deployment, ...]

    @classmethod
    def spread(cls, *, per_mode: int, shortest: float, longest: float) -> ChaosPlan:
        """``per_mode`` deployments of each kind, their stage durations evenly from ``shortest`` to ``longest``."""
        step = (longest - shortest) / max(per_mode - 1, 1)
        deployments = [
            Deployment(task_id, i, f"87000000000000{base + i:05d}", round(shortest + i * step, 1))
            for task_id, base in ((SYNC_TASK, 100), (DEFERRED_TASK, 200))
            for i in range(per_mode)
        ]
        return cls(tuple(deployments))

    def dag_plan(self) -> dict[str, list[str]]:
        """What the chaos DAG reads from ``DATAWORKS_CHAOS_PLAN``."""
        return {
            "sync": [d.object_id for d in self.deployments if not d.deferrable],
            "deferrable": [d.object_id for d in self.deployments if d.deferrable],
        }

    @property
    def clear_target(self) -> Deployment:
        """The synchronous deployment with the shortest stages: the first to succeed, then cleared."""
        return min((d for d in self.deployments if not d.deferrable), key=lambda d: d.stage_seconds)

    @property
    def fail_target(self) -> Deployment:
        """The deferred deployment with the longest stages: still deferred when it is marked failed."""
        return max((d for d in self.deployments if d.deferrable), key=lambda d: d.stage_seconds)

    def by_key(self) -> dict[str, Deployment]:
        return {d.key: d for d in self.deployments}


@dataclass
class ChaosResult:
    """What happened, for the assertions and the report."""

    plan: ChaosPlan
    client: AirflowClient
    chaos_run_id: str
    chaos_state: str | None
    example_states: dict[str, str | None]
    # key -> the task instance as the REST API returned it at the end
    task_instances: dict[str, dict[str, Any]]
    emulator_runs: list[EmulatorRun]
    create_calls: list[dict[str, Any]]
    timeline: list[str]
    # filled by the faults
    killed_triggerer: str | None = None
    killed_triggerer_job: int | None = None
    survivor_job: int | None = None
    # trigger id -> chaos task key, of the triggers the killed triggerer held
    held_triggers: dict[int, str] = field(default_factory=dict)
    # trigger id -> the triggerer job id seen holding it after the kill
    moved_triggers: dict[int, int] = field(default_factory=dict)
    killed_worker: str | None = None
    killed_worker_tasks: tuple[str, ...] = ()
    scheduler_restarted: bool = False
    cleared_first_run: str | None = None
    marked_failed_run: str | None = None
    logs_dir: Path | None = None
    # the Airflow processes' own logs (AirflowStack.log_dir)
    component_logs: Path | None = None
    seconds: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    #: the emulator's account quota: calls, 429s and their share (``DataWorksEmulator.quota_report``)
    quota: dict[str, Any] = field(default_factory=dict)

    def runs_of(self, object_id: str) -> list[EmulatorRun]:
        return runs_for(self.emulator_runs, object_id)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _key(ti: dict[str, Any]) -> str:
    return f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]


class _Chaos:
    """The state machine of one chaos pass (see the module docstring)."""

    def __init__(
        self, stack: AirflowStack, postgres: PostgresServer, emulator: Any, plan: ChaosPlan, run_timeout: float
    ) -> None:
        assert stack.client is not None, "the Airflow stack is not started"
        self.stack, self.client, self.postgres, self.emulator, self.plan = stack, stack.client, postgres, emulator, plan
        self.run_timeout = run_timeout
        self.started = time.monotonic()
        self.timeline: list[str] = []
        self.retired: list[Any] = []  # killed processes, out of check_alive's way, stopped at the end
        self.chaos_run_id = ""
        self.example_run_ids: dict[str, str] = {}
        self.result_fields: dict[str, Any] = {"held_triggers": {}, "moved_triggers": {}}

    def note(self, text: str) -> None:
        line = f"+{time.monotonic() - self.started:6.1f}s {text}"
        self.timeline.append(line)
        print(line, flush=True)

    # -- the pass ------------------------------------------------------------------------------

    def run(self) -> ChaosResult:
        for d in self.plan.deployments:
            self.emulator.add_object(PROJECT_ID, d.object_id, name=f"chaos_{d.key}", stage_seconds=d.stage_seconds)
        for dag_id in [CHAOS_DAG_ID, *EXAMPLES]:
            self.client.unpause(dag_id)
        self.started = time.monotonic()
        self.chaos_run_id = self.client.trigger(CHAOS_DAG_ID, logical_date=_now_iso())
        self.example_run_ids = {dag_id: self.client.trigger(dag_id, logical_date=_now_iso()) for dag_id in EXAMPLES}
        self.note(f"triggered {CHAOS_DAG_ID} ({len(self.plan.deployments)} deployments) and {len(EXAMPLES)} examples")
        states: dict[tuple[str, str], str] = {}
        try:
            while True:
                self.stack.check_alive()
                tis = {_key(ti): ti for ti in self.client.task_instances(CHAOS_DAG_ID, self.chaos_run_id)}
                self._step(tis)
                states = self.client.run_states()
                if self._all_finished(states) or time.monotonic() - self.started > self.run_timeout:
                    break
                time.sleep(1.0)
        finally:
            for proc in self.retired:
                proc.stop()
        seconds = round(time.monotonic() - self.started, 1)
        self.note(f"all runs finished: {CHAOS_DAG_ID} {states.get((CHAOS_DAG_ID, self.chaos_run_id))}")
        # The last trigger-log lines and the moved triggers' fates can land a moment after the run ended.
        self._watch_moved_triggers()
        final = {_key(ti): ti for ti in self.client.task_instances(CHAOS_DAG_ID, self.chaos_run_id)}
        return ChaosResult(
            plan=self.plan,
            client=self.client,
            chaos_run_id=self.chaos_run_id,
            chaos_state=states.get((CHAOS_DAG_ID, self.chaos_run_id)),
            example_states={dag_id: states.get((dag_id, run_id)) for dag_id, run_id in self.example_run_ids.items()},
            task_instances=final,
            emulator_runs=[EmulatorRun.parse(r) for r in self.emulator.runs()],
            create_calls=list(self.emulator.calls(action="CreatePipelineRun")),
            timeline=self.timeline,
            logs_dir=self.stack.task_logs,
            component_logs=self.stack.log_dir,
            seconds=seconds,
            **self.result_fields,
        )

    def _all_finished(self, states: dict[tuple[str, str], str]) -> bool:
        runs = [(CHAOS_DAG_ID, self.chaos_run_id), *self.example_run_ids.items()]
        return all(states.get(run) in TERMINAL_RUN_STATES for run in runs)

    def _step(self, tis: dict[str, dict[str, Any]]) -> None:
        fields = self.result_fields
        if "killed_triggerer" not in fields:
            self._maybe_kill_triggerer()
        else:
            self._watch_moved_triggers()
            if "marked_failed_run" not in fields:
                self._maybe_mark_failed(tis)
        if "killed_worker" not in fields:
            self._maybe_kill_worker(tis)
        if "killed_worker" in fields and not fields.get("scheduler_restarted"):
            self._restart_scheduler()
        if "cleared_first_run" not in fields:
            self._maybe_clear(tis)

    # -- triggerers ----------------------------------------------------------------------------

    def _assigned_chaos_triggers(self) -> list[tuple[int, int | None, str, int]]:
        rows = self.postgres.query(
            "SELECT t.id, t.triggerer_id, ti.task_id, ti.map_index FROM trigger t "
            "JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.state = 'deferred'",
            (CHAOS_DAG_ID, self.chaos_run_id),
        )
        return [(int(r[0]), None if r[1] is None else int(r[1]), str(r[2]), int(r[3])) for r in rows]

    def _triggerer_process(self, job_id: int) -> str | None:
        """The triggerer process running as job ``job_id``.

        The job table has no pid; but a triggerer keeps the log file of every trigger it runs open,
        and Airflow names it after the triggerer's job (``….log.trigger.<job id>.log``).
        """
        suffix = f".trigger.{job_id}.log"
        for name, proc in self.stack.processes.items():
            if not name.startswith("triggerer"):
                continue
            for pid in proc.pids():
                with contextlib.suppress(psutil.Error):
                    if any(f.path.endswith(suffix) for f in psutil.Process(pid).open_files()):
                        return name
        return None

    def _maybe_kill_triggerer(self) -> None:
        rows = [r for r in self._assigned_chaos_triggers() if r[1] is not None]
        if len(rows) < TRIGGERER_KILL_AT:
            return
        counts: dict[int, int] = {}
        for _, job_id, _, _ in rows:
            assert job_id is not None
            counts[job_id] = counts.get(job_id, 0) + 1
        victim_job = max(counts, key=lambda job: counts[job])
        victim = self._triggerer_process(victim_job)
        if victim is None:  # it has not opened a trigger log yet
            return
        survivor = next(n for n in self.stack.processes if n.startswith("triggerer") and n != victim)
        proc = self.stack.processes.pop(victim)
        proc.kill()
        self.retired.append(proc)
        held = {tid: f"{task}[{index}]" for tid, job, task, index in rows if job == victim_job}
        self.result_fields.update(killed_triggerer=victim, killed_triggerer_job=victim_job, held_triggers=held)
        self.note(
            f"SIGKILLed {victim} (job {victim_job}) holding {len(held)} of {len(rows)} deferred deployments "
            f"{counts}; {survivor} survives"
        )

    def _watch_moved_triggers(self) -> None:
        held: dict[int, str] = self.result_fields.get("held_triggers", {})
        if not held:
            return
        moved: dict[int, int] = self.result_fields["moved_triggers"]
        victim_job = self.result_fields["killed_triggerer_job"]
        rows = self.postgres.query("SELECT id, triggerer_id FROM trigger WHERE id = ANY(%s)", (list(held),))
        for trigger_id, triggerer_id in rows:
            if triggerer_id is not None and triggerer_id != victim_job and trigger_id not in moved:
                moved[int(trigger_id)] = int(triggerer_id)
                self.result_fields["survivor_job"] = int(triggerer_id)
                self.note(f"trigger {trigger_id} ({held[int(trigger_id)]}) moved to triggerer job {triggerer_id}")

    # -- workers and the scheduler -------------------------------------------------------------

    def _tasks_running_in(self, proc: Any) -> set[tuple[str, str]]:
        """``(dag_id, task key)`` of the task instances whose task log a process tree holds open.

        Each task's supervisor keeps its log file (``dag_id=…/run_id=…/task_id=…/[map_index=…/]attempt=N.log``)
        open while the task runs; ``TaskInstance.pid`` is not enough (it still names the first slice's
        process while a resumed deferred task starts).
        """
        found = set()
        for pid in proc.pids():
            with contextlib.suppress(psutil.Error):
                for f in psutil.Process(pid).open_files():
                    if ".log.trigger." in f.path or not f.path.endswith(".log"):
                        continue
                    parts = dict(p.split("=", 1) for p in Path(f.path).parts[:-1] if "=" in p)
                    if "dag_id" in parts and "task_id" in parts:
                        index = parts.get("map_index")
                        key = f"{parts['task_id']}[{index}]" if index is not None else parts["task_id"]
                        found.add((parts["dag_id"], key))
        return found

    def _maybe_kill_worker(self, tis: dict[str, dict[str, Any]]) -> None:
        waiting_objects = {r["object_id"] for r in self.emulator.runs() if r["status"] in ACTIVE_RUN_STATUSES}
        by_key = self.plan.by_key()
        for name, proc in self.stack.processes.items():
            if not name.startswith("worker"):
                continue
            running = self._tasks_running_in(proc)
            if any(dag_id != CHAOS_DAG_ID for dag_id, _ in running):
                continue  # an example task there has no retries: its DAG run would fail
            held = [
                key
                for dag_id, key in running
                if key.startswith(SYNC_TASK + "[")
                and tis.get(key, {}).get("state") == "running"
                and by_key[key].object_id in waiting_objects
                and key != self.plan.clear_target.key
            ]
            if len(held) >= 2:
                proc.kill()
                self.result_fields.update(killed_worker=name, killed_worker_tasks=tuple(sorted(held)))
                self.note(f"SIGKILLed {name} while it held the synchronous waits {sorted(held)} (and nothing else)")
                proc.start()
                self.note(f"started {name} again")
                return

    def _restart_scheduler(self) -> None:
        proc = self.stack.processes["scheduler"]
        proc.stop()
        self.note("stopped the scheduler (SIGTERM)")
        proc.start()
        self.result_fields["scheduler_restarted"] = True
        self.note("started the scheduler again")

    # -- REST interventions --------------------------------------------------------------------

    def _ti_path(self, d: Deployment) -> str:
        return (
            f"/dags/{CHAOS_DAG_ID}/dagRuns/{quote(self.chaos_run_id, safe='')}/taskInstances/{d.task_id}/{d.map_index}"
        )

    def _maybe_clear(self, tis: dict[str, dict[str, Any]]) -> None:
        target = self.plan.clear_target
        if tis.get(target.key, {}).get("state") != "success":
            return
        first_run = self.client.xcom(
            CHAOS_DAG_ID, self.chaos_run_id, target.task_id, "pipeline_run_id", target.map_index
        )
        body = {
            "dry_run": False,
            "dag_run_id": self.chaos_run_id,
            "task_ids": [[target.task_id, target.map_index]],
            "only_failed": False,
            "reset_dag_runs": True,
        }
        self.client.request("POST", f"/dags/{CHAOS_DAG_ID}/clearTaskInstances", json=body)
        self.result_fields["cleared_first_run"] = str(first_run)
        self.note(f"cleared succeeded {target.key} (its pipeline run {first_run}) through the REST API")

    def _trigger_started(self, d: Deployment) -> bool:
        """Whether a triggerer logged starting the trigger of ``d``'s task instance."""
        folder = task_log_folder(self.stack.task_logs, self.chaos_run_id, d)
        return any("starting" in log.read_text(errors="replace") for log in folder.glob("attempt=*.log.trigger.*.log"))

    def _maybe_mark_failed(self, tis: dict[str, dict[str, Any]]) -> None:
        target = self.plan.fail_target
        if tis.get(target.key, {}).get("state") != "deferred" or not self._trigger_started(target):
            # A trigger no triggerer has started has no on_kill to abolish its run with: a user
            # marking the task failed in that moment leaves the run to DataWorks (Airflow's doing)
            return
        run_id = self.client.xcom(CHAOS_DAG_ID, self.chaos_run_id, target.task_id, "pipeline_run_id", target.map_index)
        self.client.request("PATCH", self._ti_path(target), json={"new_state": "failed"})
        self.result_fields["marked_failed_run"] = str(run_id)
        self.note(f"marked deferred {target.key} (pipeline run {run_id}) failed through the REST API")


def task_log_folder(logs_dir: Path, chaos_run_id: str, d: Deployment) -> Path:
    """The folder of one chaos task instance's log files (worker attempts, ``….trigger.<job id>.log``)."""
    run_folder = logs_dir / f"dag_id={CHAOS_DAG_ID}" / f"run_id={chaos_run_id}"
    return run_folder / f"task_id={d.task_id}" / f"map_index={d.map_index}"


def run_chaos(
    stack: AirflowStack, postgres: PostgresServer, emulator: Any, plan: ChaosPlan, *, run_timeout: float
) -> ChaosResult:
    """Run the chaos pass and return what happened, with ``report`` filled in."""
    result = _Chaos(stack, postgres, emulator, plan, run_timeout).run()
    result.quota = {**emulator.quota_report(), "qps": emulator.qps}
    result.report = build_report(result)
    return result


def build_report(result: ChaosResult) -> dict[str, Any]:
    """The figures of ``build/e2e-prod-report.json``."""
    plan = result.plan
    expected_runs = {d.object_id: 1 for d in plan.deployments}
    expected_runs[plan.clear_target.object_id] = 2  # one per DAG-run attempt: the clear is a second attempt
    for example in EXAMPLES.values():
        for objects in example.deploys.values():
            for object_id in objects:
                expected_runs[object_id] = 1
    counts = {obj: len(result.runs_of(obj)) for obj in expected_runs}
    succeeded = 0
    for d in plan.deployments:
        runs = result.runs_of(d.object_id)
        ti = result.task_instances.get(d.key, {})
        if runs and runs[-1].status == "Success" and ti.get("state") == "success":
            succeeded += 1
    stage_requests = [s.get("start_requests", 0) for r in result.emulator_runs for s in r.raw["stages"]]
    retried = sorted(
        key
        for key, ti in result.task_instances.items()
        if (ti.get("try_number") or 0) > 1 and key != plan.clear_target.key
    )
    return {
        "deployments": len(plan.deployments),
        "succeeded": succeeded,
        "marked_failed": 1 if result.marked_failed_run else 0,
        "duplicates": sum(max(0, counts[obj] - n) for obj, n in expected_runs.items()),
        "create_calls": len(result.create_calls),
        "pipeline_runs": len(result.emulator_runs),
        "stage_starts_max": max(stage_requests, default=0),
        "left_running": sum(1 for r in result.emulator_runs if r.status in ACTIVE_RUN_STATUSES),
        "triggerer_killed": result.killed_triggerer is not None,
        "triggers_held_by_killed_triggerer": len(result.held_triggers),
        "triggers_moved": len(result.moved_triggers),
        "worker_killed": result.killed_worker is not None,
        "worker_killed_tasks": list(result.killed_worker_tasks),
        "scheduler_restarted": result.scheduler_restarted,
        "cleared_redeployed": bool(
            result.cleared_first_run
            and len(result.runs_of(plan.clear_target.object_id)) == 2
            and result.runs_of(plan.clear_target.object_id)[-1].id != result.cleared_first_run
        ),
        "tasks_retried": len(retried),
        "retried_tasks": retried,
        "chaos_dag_run": result.chaos_state,
        "example_runs": result.example_states,
        "seconds": result.seconds,
        # every component shares one account quota (the emulator's --qps) through the shared budget
        "account_qps": result.quota.get("qps"),
        "api_calls": result.quota.get("calls"),
        "throttled": result.quota.get("throttled"),
        "throttled_share": result.quota.get("throttled_share"),
        "peak_calls_per_second": result.quota.get("peak_per_second"),
        "timeline": result.timeline,
    }
