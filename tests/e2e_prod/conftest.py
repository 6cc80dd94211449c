"""Session fixtures of the production-shaped step: PostgreSQL, Redis, the emulator over HTTPS, Airflow on Celery.

Reuses the process management and the REST client of the SQLite step (``tests/e2e``). Everything
started here is stopped in the finalizers, also when a test or the setup fails and on SIGTERM; the
temporary folders are removed afterwards (``E2E_KEEP_TMP=1`` keeps the step's folder).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.airflow_stack import AirflowStack
from e2e.example_runs import EXAMPLES
from e2e.processes import free_port, tail
from e2e.session import StepSession

from .chaos import CHAOS_DAG_ID, REPORT_PATH, ChaosPlan, ChaosResult, run_chaos
from .services import PostgresServer, RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
CHAOS_DAGS = Path(__file__).resolve().parent / "dags"
STARTUP_TIMEOUT = float(os.environ.get("E2E_STARTUP_TIMEOUT", "240"))
# Seconds from the chaos run's trigger until every run must have finished.
RUN_TIMEOUT = float(os.environ.get("E2E_PROD_RUN_TIMEOUT", "450"))
# The example objects' stages (the chaos objects have their own, 5-30 s).
EXAMPLE_STAGE_SECONDS = "2"
CELERY_CONCURRENCY = "8"
#: the account's quota the emulator enforces for all calls together, as on the Basic edition
ACCOUNT_QPS = "5"

SESSION = StepSession("e2e-prod")
_summary = SESSION.summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    SESSION.write_summary(terminalreporter)


@pytest.fixture(scope="session")
def prod_tmp() -> Iterator[Path]:
    with SESSION.temporary_directory("dataworks-e2e-prod-") as path:
        yield path


@pytest.fixture(scope="session")
def postgres(prod_tmp: Path, request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    server = PostgresServer(log_path=prod_tmp / "postgres.log")
    log = lambda: f"===== postgres.log (last 30 lines) =====\n{tail(server.log_path, 30)}"  # noqa: E731
    with SESSION.stopped_at_end(server.stop, request=request, failure_log=log):
        yield server.start()
    assert server.root is None or not server.root.exists(), f"{server.root} was not removed"


@pytest.fixture(scope="session")
def redis_server(prod_tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(log_path=prod_tmp / "redis.log")
    with SESSION.stopped_at_end(server.stop):
        yield server.start()


@pytest.fixture(scope="session")
def tls_emulator(prod_tmp: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """The DataWorks emulator in its own process, serving HTTPS with a throw-away CA, 5 QPS for the account."""
    from airflow_provider_dataworks.testing import DataWorksEmulator

    options = ["--stage-seconds", EXAMPLE_STAGE_SECONDS, "--tls", "--cert-dir", str(prod_tmp / "emulator-certs")]
    options += ["--qps", ACCOUNT_QPS]
    with SESSION.emulator_process(prod_tmp / "emulator.log", options, request=request, log_lines=30) as address:
        url, ca_path = address
        assert url.startswith("https://") and ca_path, address
        yield DataWorksEmulator.attach(url, ca_path=ca_path)


def _dags_folder(prod_tmp: Path) -> Path:
    """Every example DAG plus the chaos DAG, in one folder."""
    folder = prod_tmp / "dags"
    folder.mkdir()
    for source in [*EXAMPLE_DAGS.glob("*.py"), *CHAOS_DAGS.glob("*.py")]:
        shutil.copy(source, folder / source.name)
    return folder


def _components() -> dict[str, list[str]]:
    worker = ["celery", "worker", "--concurrency", CELERY_CONCURRENCY, "--skip-serve-logs"]
    worker += ["--without-mingle", "--without-gossip"]
    return {
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        # All logs are local files the API server reads: no log servers (they would share a port).
        "triggerer-1": ["triggerer", "--skip-serve-logs"],
        "triggerer-2": ["triggerer", "--skip-serve-logs"],
        "worker-1": [*worker, "--celery-hostname", "worker-1@%h"],
        "worker-2": [*worker, "--celery-hostname", "worker-2@%h"],
        "api-server": ["api-server"],
    }


@pytest.fixture(scope="session")
def chaos_plan() -> ChaosPlan:
    return ChaosPlan.spread(per_mode=10, shortest=5.0, longest=30.0)


@pytest.fixture(scope="session")
def prod_stack(
    prod_tmp: Path,
    postgres: PostgresServer,
    redis_server: RedisServer,
    tls_emulator,
    chaos_plan: ChaosPlan,
    request: pytest.FixtureRequest,
) -> Iterator[AirflowStack]:
    """Airflow on PostgreSQL with CeleryExecutor on Redis, two triggerers and two workers."""
    sqlite_example_db = {"conn_type": "sqlite", "host": str(prod_tmp / "dataworks_example.db")}
    stack = AirflowStack(
        home=prod_tmp / "airflow-home",
        dags_folder=_dags_folder(prod_tmp),
        sql_alchemy_conn=postgres.url,
        components=_components(),
        extra_env={
            # the emulator enforces a quota, so the connection carries the default budget (3 + 2 QPS)...
            "AIRFLOW_CONN_DATAWORKS_DEFAULT": tls_emulator.connection_uri(project_id=10000),
            # ...which is the account's: every triggerer and task process shares it through Celery's Redis
            "AIRFLOW__DATAWORKS__QUOTA_STORE": "celery",
            "AIRFLOW_CONN_DATAWORKS_EXAMPLE_SQLITE": json.dumps(sqlite_example_db),
            "DATAWORKS_EXAMPLE_POLL_INTERVAL": "1",
            "DATAWORKS_CHAOS_POLL_INTERVAL": "2",
            "DATAWORKS_CHAOS_PLAN": json.dumps(chaos_plan.dag_plan()),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CELERY__BROKER_URL": redis_server.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{postgres.url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": CELERY_CONCURRENCY,
            # A dead triggerer's triggers go to the other one within seconds (defaults: 5 s and 30 s).
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
            # Claim few triggers per loop, so both triggerers hold some (default 50).
            "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "2",
            # A task whose worker died is failed (and retried) after 20 s without heartbeat (default 300 s).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # The restarted scheduler adopts the old one's queued and running tasks soon (default 300 s).
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
            # A task the killed worker had taken but not started is lost with it (Redis would hand
            # its message out again only after the 6 h visibility timeout): the scheduler queues it
            # again after 150 s in the queued state (default 600 s, longer than this step waits).
            # Not less: on a slow machine a task waits up to 76 s for a free worker slot, and
            # requeueing a task that merely waits fails that try (its first message then fails in
            # Celery); the release-window example retries only after 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "150",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
            # A task still starting on the killed worker has no log open yet, so the kill cannot see it:
            # tasks without retries of their own (most examples) retry once, soon, as production ones would.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "1",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        },
    )
    started = time.monotonic()
    with SESSION.stopped_at_end(stack.stop, request=request, failure_log=lambda: stack.log_tails(30)):
        stack.start(timeout=STARTUP_TIMEOUT, expected_dag_ids=[*EXAMPLES, CHAOS_DAG_ID])
        _summary.append(
            f"Airflow (PostgreSQL, Celery, 2 triggerers, 2 workers) up in {time.monotonic() - started:.1f}s"
        )
        yield stack


@pytest.fixture(scope="session")
def chaos(prod_stack: AirflowStack, postgres: PostgresServer, tls_emulator, chaos_plan: ChaosPlan) -> ChaosResult:
    """Run the chaos DAG and every example at once, with the faults, and write the report."""
    result = run_chaos(prod_stack, postgres, tls_emulator, chaos_plan, run_timeout=RUN_TIMEOUT)
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(json.dumps(result.report, indent=2, sort_keys=True) + "\n")
    _summary.append(f"report: {REPORT_PATH}")
    _summary.extend(f"  {line}" for line in result.timeline)
    print(f"\ne2e-prod report written to {REPORT_PATH}")
    return result
