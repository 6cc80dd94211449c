"""A real Airflow deployment of the installed version for the compatibility e2e, and a REST client for it.

Airflow 3.x is :class:`e2e.airflow_stack.AirflowStack` as the main e2e runs it (scheduler,
dag-processor, triggerer, api-server; REST API v2 with a SimpleAuthManager token). Airflow 2.11
differs: a ``webserver`` instead of the api-server, the DAG processor inside the scheduler, REST
API v1 with FAB's basic auth and a user made with ``airflow users create``, and the
SequentialExecutor (2.x refuses the LocalExecutor on SQLite).
"""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from e2e.airflow_stack import ADMIN_USER, AirflowStack, airflow_executable
from e2e.processes import ManagedProcess, tail, wait_until

from compat.versions import AIRFLOW_V_3

V2_COMPONENTS = ("scheduler", "triggerer", "webserver")


@dataclass
class Airflow2Stack(AirflowStack):
    """The same deployment on Airflow 2.11: scheduler, triggerer and the FAB webserver."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.port),
                "AIRFLOW__WEBSERVER__BASE_URL": self.base_url,
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(24),
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "60",
            }
        )
        return env

    def start(self, *, timeout: float = 180.0, expected_dag_ids: Any = ()) -> Any:  # type: ignore[override]
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        airflow = airflow_executable()
        setup = [
            [airflow, "db", "migrate"],
            [
                airflow,
                "users",
                "create",
                "--username",
                ADMIN_USER,
                "--password",
                self.password,
                "--role",
                "Admin",
                "--firstname",
                "E2E",
                "--lastname",
                "Admin",
                "--email",
                "admin@example.invalid",
            ],
        ]
        for argv in setup:
            log_path = self.log_dir / f"{argv[1]}-{argv[2]}.log"
            with open(log_path, "wb") as log:
                done = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=180, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{tail(log_path)}")
        for name in V2_COMPONENTS:
            self.processes[name] = ManagedProcess(
                name=name, argv=[airflow, name], env=env, log_path=self.log_dir / f"{name}.log", cwd=self.home
            ).start()
        wait_until(
            self._healthy, timeout=timeout, interval=1.0, what="Airflow components healthy", on_tick=self.check_alive
        )
        return None

    def _healthy(self) -> bool:
        try:
            health = httpx.get(f"{self.base_url}/health", timeout=5, trust_env=False).json()
        except (httpx.HTTPError, ValueError):
            return False
        parts = [health["metadatabase"], health["scheduler"], health["triggerer"]]
        return all(part and part.get("status") == "healthy" for part in parts)

    def stop(self) -> list[str]:
        leftovers = []
        for name in ("scheduler", "triggerer", "webserver"):
            if proc := self.processes.get(name):
                proc.stop()
                leftovers += [f"{name}: {line}" for line in proc.leftovers()]
        return leftovers


def make_stack(**kwargs: Any) -> AirflowStack:
    return AirflowStack(**kwargs) if AIRFLOW_V_3 else Airflow2Stack(**kwargs)


class CompatClient:
    """The handful of REST calls the compatibility e2e makes, on API v2 (3.x) or v1 (2.11)."""

    def __init__(self, stack: AirflowStack) -> None:
        self.http = httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False)
        if AIRFLOW_V_3:
            token = self.http.post("/auth/token", json={"username": ADMIN_USER, "password": stack.password})
            token.raise_for_status()
            self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            self.prefix = "/api/v2"
        else:
            self.http.auth = (ADMIN_USER, stack.password)
            self.prefix = "/api/v1"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.prefix}{path}", **kwargs)
        if response.is_error:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def dag_ids(self) -> set[str]:
        errors = self.request("GET", "/importErrors")["import_errors"]
        assert not errors, "DAG import errors:\n" + "\n".join(e["stack_trace"] for e in errors)
        return {dag["dag_id"] for dag in self.request("GET", "/dags", params={"limit": 100})["dags"]}

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str) -> str:
        run_id = f"compat__{dag_id}__{secrets.token_hex(4)}"
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": {}}
        if AIRFLOW_V_3:
            body["logical_date"] = None
        self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return run_id

    def _ti_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.request("GET", self._ti_path(dag_id, run_id, task_id))["state"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]

    def mark_failed(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Kill the task as a user does from the UI: mark it failed."""
        body: dict[str, Any] = {"new_state": "failed"}
        if not AIRFLOW_V_3:
            body["dry_run"] = False
        self.request("PATCH", self._ti_path(dag_id, run_id, task_id), json=body)

    def wait_task(self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.task_state(dag_id, run_id, task_id)
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id}.{task_id} is {state}, not in {sorted(states)} after {timeout}s")
            time.sleep(1)
