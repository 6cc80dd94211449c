"""Throw-away PostgreSQL and Redis servers for the production-shaped end-to-end step.

Each server gets its own data directory in a temporary folder and its own free loopback port, and
runs in the foreground as a :class:`~e2e.processes.ManagedProcess` (so it is stopped with
everything else, also on failure). ``scripts/install_e2e_prod_services.sh`` installs Debian's
packages when they are missing.

PostgreSQL refuses to run as root; as root the server (and ``initdb``) run as the ``postgres``
user the Debian package creates, through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.processes import ManagedProcess, clean_environment, free_port, tail, wait_until

DB_USER = "airflow"
DB_NAME = "airflow"


def postgres_bindir() -> Path:
    """The directory of Debian's PostgreSQL server binaries (the newest major version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: run scripts/install_e2e_prod_services.sh (make e2e-prod does)")


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PostgresServer:
    """A PostgreSQL server with a fresh cluster, trust authentication on 127.0.0.1 only."""

    log_path: Path
    port: int = field(default_factory=free_port)
    root: Path | None = None
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the Airflow database (the driver named: SQLAlchemy 2.1 defaults to psycopg 3)."""
        return f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={DB_USER} dbname={DB_NAME}"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        bindir = postgres_bindir()
        # Its own folder, outside the step's 0700 temporary directory, so the postgres user can enter it.
        self.root = Path(tempfile.mkdtemp(prefix="dataworks-e2e-pg-"))
        data, sockets = self.root / "data", self.root / "run"
        sockets.mkdir()
        if os.geteuid() == 0:
            server_user = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(sockets, server_user.pw_uid, server_user.pw_gid)
            os.chown(self.root, server_user.pw_uid, server_user.pw_gid)
        env = clean_environment({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
        init = subprocess.run(
            _as_server_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", DB_USER, "-E", "UTF8"]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout[-2000:]}\n{init.stderr[-2000:]}")
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            # Two schedulers' worth of pools, two triggerers, two Celery workers and the API server.
            "-c",
            "max_connections=300",
            # A throw-away cluster: durability is not worth the fsyncs on a shared machine.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        self.process = ManagedProcess(name="postgres", argv=_as_server_user(argv), env=env, log_path=self.log_path)
        self.process.start()
        wait_until(self._create_database, timeout=timeout, interval=0.5, what="PostgreSQL to accept connections")
        return self

    def _create_database(self) -> bool:
        import psycopg2

        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"PostgreSQL exited:\n{tail(self.log_path)}")
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres", connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            conn.close()
        return True

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query against the Airflow database and return its rows."""
        import psycopg2

        conn = psycopg2.connect(self.dsn, connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> list[str]:
        """Stop the server and remove its folder; return processes that survived."""
        leftovers: list[str] = []
        if self.process is not None:
            self.process.stop()
            leftovers = [f"postgres: {line}" for line in self.process.leftovers()]
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        return leftovers


@dataclass
class RedisServer:
    """A Redis server on a free loopback port, without persistence (the Celery broker)."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: run scripts/install_e2e_prod_services.sh")
        argv = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.log_path.parent),
        ]
        self.process = ManagedProcess(name="redis", argv=argv, env=clean_environment(), log_path=self.log_path)
        self.process.start()
        wait_until(self._ping, timeout=timeout, interval=0.3, what="Redis to answer PING")
        return self

    def _ping(self) -> bool:
        import redis

        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"redis-server exited:\n{tail(self.log_path)}")
        return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2).ping())

    def stop(self) -> list[str]:
        if self.process is None:
            return []
        self.process.stop()
        return [f"redis: {line}" for line in self.process.leftovers()]
