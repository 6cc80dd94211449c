"""A real Airflow 3 deployment on loopback, and a small client for its public REST API (v2).

The components run as separate processes, as in production: ``airflow db migrate`` once, then
``scheduler`` (LocalExecutor), ``dag-processor``, ``triggerer`` and ``api-server``. All settings go
through ``AIRFLOW__*`` environment variables so that every process sees the same configuration,
including the secrets that must agree between them (JWT secret, Fernet key).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.fernet import Fernet

from .processes import ManagedProcess, clean_environment, free_port, tail, wait_until

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
ADMIN_USER = "admin"


def airflow_executable() -> str:
    """The ``airflow`` script of the interpreter running the tests (the project's venv)."""
    return str(Path(sys.executable).with_name("airflow"))


@dataclass
class AirflowStack:
    """Own a temporary AIRFLOW_HOME and the Airflow processes running from it.

    :param home: an empty directory that becomes AIRFLOW_HOME.
    :param dags_folder: the DAG folder the dag-processor parses.
    :param extra_env: more environment for every component (connections, ``AIRFLOW__*`` overrides).
    :param sql_alchemy_conn: the metadata database; SQLite in ``home`` when not given.
    :param components: process name -> ``airflow`` arguments, started in this order; default: one
        each of :data:`COMPONENTS`. An ``api-server`` gets ``--host``/``--port`` appended.
    """

    home: Path
    dags_folder: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    sql_alchemy_conn: str | None = None
    components: Mapping[str, Sequence[str]] | None = None
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    client: AirflowClient | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "component-logs"

    @property
    def task_logs(self) -> Path:
        """Airflow's task log folder (``[logging] base_log_folder``, left at its default under AIRFLOW_HOME)."""
        return self.home / "logs"

    def environment(self) -> dict[str, str]:
        """The environment shared by every component."""
        venv_bin = str(Path(sys.executable).parent)
        passwords_file = self.home / "simple_auth_manager_passwords.json"
        env = {
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Two cores, shared: a few concurrent task processes are plenty.
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            # SQLite's default 5 s busy timeout makes concurrent writers (api-server, scheduler, dag-processor)
            # fail with "database is locked" on a loaded machine; wait up to a minute instead.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn
            or f"sqlite:///{self.home}/airflow.db?timeout=60",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            # Pick up the DAG folder at once and do not re-parse it during the step.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            # Only the runs the step triggers: unpausing a scheduled example must not also start the
            # latest scheduled interval (a second pipeline run, and max_active_runs=1 queues ours).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The task supervisor notices its task has exited only when select() wakes up, at the latest
            # after this many seconds (default 5). A deferred task whose trigger fires before the
            # scheduler has seen the worker's exit is failed by the scheduler ("finished with state
            # success, but the task instance's state attribute is queued"); quick checks are a must here.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            # Other engineers may run Airflow on this machine: no fixed ports.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        }
        if self.sql_alchemy_conn is None:
            # A task's calls to the execution API (an XCom push, a state change) wait for the API
            # server, which waits up to SQLite's 60 s busy timeout on a loaded machine: Airflow's 5 s
            # default (3.1.1+) failed a py313 e2e task with "API_SERVER_ERROR ... ReadTimeout" while
            # a fuzz run shared the machine. Airflow's advice under high load is a longer timeout.
            env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] = "90"
        env.update(self.extra_env)
        return clean_environment(env)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, *, timeout: float = 180.0, expected_dag_ids: Iterable[str] = ()) -> AirflowClient:
        """Migrate the database, start the four components and wait until they serve.

        :param timeout: seconds for the components to become healthy and parse the DAGs.
        :param expected_dag_ids: DAGs that must be parsed before this returns.
        :return: a REST client logged in as the admin user.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "simple_auth_manager_passwords.json").write_text(json.dumps({ADMIN_USER: self.password}) + "\n")
        env = self.environment()
        migrate_log = self.log_dir / "db-migrate.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(migrate_log, "wb") as log:
            result = subprocess.run(
                [airflow_executable(), "db", "migrate"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed ({result.returncode}):\n{tail(migrate_log)}")

        components = self.components or {name: [name] for name in COMPONENTS}
        for name, args in components.items():
            argv = [airflow_executable(), *args]
            if args[0] == "api-server":
                argv += ["--host", "127.0.0.1", "--port", str(self.port)]
            self.processes[name] = ManagedProcess(
                name=name, argv=argv, env=env, log_path=self.log_dir / f"{name}.log", cwd=self.home
            ).start()

        client = self.client = AirflowClient(self.base_url)
        deadline = time.monotonic() + timeout
        wait_until(
            self._healthy, timeout=timeout, interval=1.0, what="Airflow components healthy", on_tick=self.check_alive
        )
        client.login(ADMIN_USER, self.password)
        expected = set(expected_dag_ids)
        if expected:
            wait_until(
                lambda: client.parsed_dags(expected),
                timeout=max(deadline - time.monotonic(), 10.0),
                interval=1.0,
                what=f"DAGs {sorted(expected)} to be parsed",
                on_tick=self.check_alive,
            )
        return client

    def _healthy(self) -> bool:
        health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5, trust_env=False).json()
        parts = [health["metadatabase"], health["scheduler"], health["triggerer"], health.get("dag_processor")]
        return all(part and part.get("status") == "healthy" for part in parts)

    def check_alive(self) -> None:
        """Raise if any component exited (its log tail in the message)."""
        for proc in self.processes.values():
            proc.remember_descendants()
            if not proc.alive():
                raise RuntimeError(
                    f"Airflow {proc.name} exited with {proc.popen.returncode if proc.popen else None}:\n{proc.tail(40)}"
                )

    def stop(self) -> list[str]:
        """Stop every component (api-server last); return descriptions of processes that survived."""
        leftovers = []
        # The scheduler first (it launches work), the API server last (the others report to it).
        names = sorted(self.processes, key=lambda name: (name != "scheduler", name == "api-server"))
        for name in names:
            proc = self.processes[name]
            proc.stop()
            leftovers += [f"{name}: {line}" for line in proc.leftovers()]
        return leftovers

    def log_tails(self, lines: int = 40) -> str:
        """The tail of every component log (without the API's access log), for a failure report."""
        paths = [self.log_dir / "db-migrate.log", *(p.log_path for p in self.processes.values())]
        return "\n".join(
            f"===== {path.name} (last {lines} lines) =====\n{tail(path, lines, skip='[http.access]')}" for path in paths
        )


#: seconds a REST call may take; above SQLite's busy timeout of 60 s
REQUEST_TIMEOUT = 90.0
IDEMPOTENT_METHODS = frozenset({"GET", "PATCH", "PUT", "DELETE"})


class AirflowClient:
    """Just enough of Airflow's public REST API (``/api/v2``) for the end-to-end checks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.token: str | None = None
        # Longer than SQLite's busy timeout (60 s in the connection URI): a request that waits on the
        # scheduler's write lock is slow, not lost.
        self.http = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False)
        # Every run this client triggers starts with this, so a reused (PostgreSQL) database is harmless.
        self.run_id_prefix = f"e2e-{secrets.token_hex(3)}"

    def login(self, username: str, password: str) -> str:
        """Get a JWT from the SimpleAuthManager (``POST /auth/token``) and use it from now on."""
        response = self.http.post("/auth/token", json={"username": username, "password": password})
        response.raise_for_status()
        self.token = response.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        return self.token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; a timed-out idempotent call (GET, PATCH) is asked again, twice at most.

        A POST is never repeated here: the caller knows whether repeating it is safe (see ``trigger``).
        """
        attempts = 3 if method in IDEMPOTENT_METHODS else 1
        for attempt in range(attempts):
            try:
                response = self.http.request(method, f"/api/v2{path}", **kwargs)
                break
            except httpx.TimeoutException:
                if attempt == attempts - 1:
                    raise
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"{method} {path} -> {response.status_code}: {response.text[:500]}",
                request=response.request,
                response=response,
            )
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    # -- DAGs and runs ---------------------------------------------------------------------------

    def parsed_dags(self, dag_ids: set[str]) -> bool:
        """True once every DAG in ``dag_ids`` is parsed; raise at once on an import error."""
        errors = self.get("/importErrors")["import_errors"]
        if errors:
            raise AssertionError(
                "DAG import errors:\n" + "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
            )
        found = {dag["dag_id"] for dag in self.get("/dags", limit=100)["dags"]}
        return dag_ids <= found

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, *, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        """Trigger a manual run and return its run id.

        The run id is chosen here, so a retry after a server error cannot create a second run: it gets
        409 if the first attempt did create it.
        """
        run_id = f"{self.run_id_prefix}__{dag_id}__{secrets.token_hex(4)}"
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        for attempt in range(3):
            try:
                self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
                return run_id
            except httpx.TimeoutException:
                # The run may or may not exist now: its id is ours, so asking again is safe (409 if it does).
                if attempt == 2:
                    raise
            except httpx.HTTPStatusError as err:
                if attempt and err.response.status_code == 409:
                    return run_id
                if err.response.status_code < 500 or attempt == 2:
                    raise
            time.sleep(2)
        raise AssertionError("unreachable")

    def run_states(self) -> dict[tuple[str, str], str]:
        """``{(dag_id, run_id): state}`` of the runs this client triggered, all DAGs in one request."""
        runs = self.get("/dags/~/dagRuns", limit=100, order_by="-id", run_id_prefix_pattern=self.run_id_prefix)
        return {(r["dag_id"], r["dag_run_id"]): r["state"] for r in runs["dag_runs"]}

    def deferred_task_instances(self) -> list[dict[str, Any]]:
        """Task instances of the runs this client triggered that are deferred right now (one request)."""
        tis = self.get("/dags/~/dagRuns/~/taskInstances", state="deferred", limit=100)["task_instances"]
        return [ti for ti in tis if ti["dag_run_id"].startswith(self.run_id_prefix)]

    def _ti_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.get(path, limit=100)["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        """The XCom value as the task pushed it (the API returns the JSON-serialised value)."""
        entry = self.get(f"{self._ti_path(dag_id, run_id, task_id)}/xcomEntries/{key}", map_index=map_index)
        value = entry["value"]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str | None]:
        """``{link name: url}`` of a task instance's extra links."""
        body = self.get(f"{self._ti_path(dag_id, run_id, task_id)}/links", map_index=map_index)
        return dict(body.get("extra_links", body))

    def log_entries(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """The structured task log: worker slices and the triggerer's part, in time order."""
        body = self.get(
            f"{self._ti_path(dag_id, run_id, task_id)}/logs/{try_number}",
            full_content=True,
            map_index=map_index,
        )
        content = body["content"]
        if isinstance(content, str):
            return [{"event": line} for line in content.splitlines()]
        return [entry if isinstance(entry, dict) else {"event": str(entry)} for entry in content]


def format_log(entries: list[dict[str, Any]], limit: int = 80) -> str:
    """Render structured log entries as text (the last ``limit``), for assertion messages."""
    lines = []
    for entry in entries[-limit:]:
        extras = {
            k: v for k, v in entry.items() if k in ("logger", "filename", "name", "result", "error_detail", "exception")
        }
        lines.append(f"{entry.get('level', '')} {entry.get('event', '')} {extras or ''}".strip())
    return "\n".join(lines)


FIRED_EVENT = "Trigger fired event"


def is_triggerer_line(entry: dict[str, Any], event: str = FIRED_EVENT) -> bool:
    """A task-log entry in which the triggerer process (``triggerer_job_runner.py``) says ``event`` of the trigger."""
    return entry.get("event") == event and entry.get("filename") == "triggerer_job_runner.py"


@dataclass(frozen=True)
class TriggererLine:
    """Where the triggerer said something of a task instance's trigger, and what it said."""

    #: "task log", or the name of the triggerer's own log file
    source: str
    #: from the task log, the entry's ``result`` (a fired event's payload), or the entry when it has none;
    #: from the triggerer's own log, the whole line
    text: str
    #: its position in the task log's entries; None when found in the triggerer's own log
    index: int | None


def in_triggerer_logs(
    log_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int, event: str = FIRED_EVENT
) -> list[tuple[str, str]]:
    """The lines of the triggerers' own logs in which the triggerer said ``event`` of this task instance's trigger.

    The triggerer's subprocess sends a trigger's log lines and its state changes over two sockets. When
    the supervisor reads "trigger finished" first, it closes the trigger's log file, and the lines still
    in flight ("Trigger fired event", "Trigger cancelled by user action…") are written to the triggerer's
    own output instead (Airflow 3.3, ``TriggerRunnerSupervisor``: a log line of a trigger no longer cached
    goes to its fallback logger). The line keeps the trigger's name, ``dag/run/task/map index/try (ID n)``.
    """
    # the renderer may quote the name (it has spaces): match what is inside the quotes
    name = f"{dag_id}/{run_id}/{task_id}/{map_index}/{try_number} (ID "
    return [
        (path.name, line)
        for path in sorted(log_dir.glob("triggerer*.log"))
        for line in path.read_text(errors="replace").splitlines()
        if event in line and name in line
    ]


def wait_for_triggerer_line(
    client: AirflowClient,
    log_dir: Path,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int = 1,
    map_index: int = -1,
    event: str = FIRED_EVENT,
    timeout: float = 30,
) -> tuple[list[dict[str, Any]], TriggererLine | None]:
    """The task log, and where the triggerer said ``event`` of the task's trigger (None if not within ``timeout`` s).

    It is looked for in the task log first, then in the triggerers' own logs (see
    :func:`in_triggerer_logs`). The task log is re-read until then: the triggerer writes a trigger's log
    file asynchronously, and its last lines can land seconds after the resumed task has finished.
    """
    deadline = time.monotonic() + timeout
    while True:
        entries = client.log_entries(dag_id, run_id, task_id, try_number, map_index)
        index = next((i for i, e in enumerate(entries) if is_triggerer_line(e, event)), None)
        if index is not None:
            text = str(entries[index].get("result", entries[index]))
            return entries, TriggererLine(source="task log", text=text, index=index)
        elsewhere = in_triggerer_logs(log_dir, dag_id, run_id, task_id, try_number, map_index, event)
        if elsewhere:
            source, line = elsewhere[0]
            return entries, TriggererLine(source=source, text=line, index=None)
        if time.monotonic() > deadline:
            return entries, None
        time.sleep(1)
