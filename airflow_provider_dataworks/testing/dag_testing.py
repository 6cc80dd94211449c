"""The ``dataworks_airflow`` pytest fixture: everything ``dag.test()`` needs for a user's own DAGs.

Registered through the provider's ``pytest11`` plugin (:mod:`.pytest_plugin`). Configure it in the
pytest ini file of the project that holds the DAGs::

    [tool.pytest.ini_options]
    dataworks_dags_folder = "dags"          # relative to the ini file; turns the kit on
    dataworks_conn_id = "dataworks_default"  # optional
    dataworks_project_id = "10000"           # optional: the emulator workspace the connection names

Why the ini file and not only a fixture: Airflow reads ``AIRFLOW_HOME``, its config file and the
metadata database URL once, when ``airflow`` is first imported, and binds its SQLAlchemy engine to
that database. A user's ``conftest.py`` or test module often imports Airflow (or the DAG file) at
module level, before any fixture runs. So, when ``dataworks_dags_folder`` is set, the plugin
points ``AIRFLOW_HOME`` at a throwaway directory in ``pytest_load_initial_conftests``, which pytest
calls before it imports any ``conftest.py``. The one constraint: Airflow must not be imported
before pytest loads its plugins (``python -c "import airflow; pytest.main()"``, or another plugin
that imports Airflow when it is loaded); the fixture detects that and fails with a message saying so.

The database is migrated once per session (``airflow db migrate``, the public CLI, on every
supported Airflow version) and kept as a template. Each test gets a pristine copy of it, written
over the session's database file with SQLite's online backup API, so a test costs milliseconds
instead of a migration, and no test sees another's DAG runs. The engine keeps pointing at the same
file, so nothing of Airflow's ORM setup has to be redone.

Nothing here imports Airflow at module level: pytest imports this module for every project that has
the provider installed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_dataworks.testing.controller import DataWorksEmulator

DAGS_FOLDER_INI = "dataworks_dags_folder"
CONN_ID_INI = "dataworks_conn_id"
PROJECT_ID_INI = "dataworks_project_id"
DEFAULT_CONN_ID = "dataworks_default"
#: the basic-mode workspace of the emulator's default seed
DEFAULT_PROJECT_ID = 10000

# Kept in sync with controller.PROXY_ENV_VARS, repeated here so importing the plugin stays cheap.
_PROXY_ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
# Settings of the user's own Airflow that would point the session away from its throwaway home.
_USER_SETTINGS_PREFIXES = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__DAGS_FOLDER",
)
_DB_FILE = "airflow.db"
_TEMPLATE_FILE = "airflow.db.migrated"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        DAGS_FOLDER_INI,
        "dataworks_airflow fixture: the folder of the DAG files under test, relative to the ini file. "
        "Setting it gives the session a throwaway AIRFLOW_HOME before any conftest.py is imported.",
        default="",
    )
    parser.addini(CONN_ID_INI, "dataworks_airflow fixture: the emulator connection's id", default=DEFAULT_CONN_ID)
    parser.addini(
        PROJECT_ID_INI, "dataworks_airflow fixture: the connection's project_id", default=str(DEFAULT_PROJECT_ID)
    )


@dataclass
class _Session:
    """The throwaway ``AIRFLOW_HOME`` of one pytest session (one per xdist worker)."""

    home: Path
    saved_env: dict[str, str | None]
    airflow_imported_before: bool

    @property
    def database(self) -> Path:
        return self.home / _DB_FILE

    @property
    def template(self) -> Path:
        return self.home / _TEMPLATE_FILE


_session: _Session | None = None


def _ini_dags_folder(config: pytest.Config) -> Path | None:
    value = str(config.getini(DAGS_FOLDER_INI) or "").strip()
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / value).resolve()


def _set_env(saved: dict[str, str | None], name: str, value: str | None) -> None:
    saved.setdefault(name, os.environ.get(name))
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _enter_session(dags_folder: Path | None) -> _Session:
    """Point Airflow's settings at a new throwaway home, remembering what they were."""
    global _session
    if _session is not None:
        return _session
    home = Path(tempfile.mkdtemp(prefix="dataworks-airflow-home-")).resolve()
    saved: dict[str, str | None] = {}
    for name in [n for n in os.environ if n.startswith(_USER_SETTINGS_PREFIXES)]:
        _set_env(saved, name, None)
    _set_env(saved, "AIRFLOW_HOME", str(home))
    _set_env(saved, "AIRFLOW_CONFIG", str(home / "airflow.cfg"))
    _set_env(saved, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / _DB_FILE}")
    _set_env(saved, "AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Airflow 2 would otherwise write some sixty example connections into the database.
    _set_env(saved, "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS", "False")
    _set_env(saved, "AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    if dags_folder is not None:
        _set_env(saved, "AIRFLOW__CORE__DAGS_FOLDER", str(dags_folder))
    _session = _Session(home=home, saved_env=saved, airflow_imported_before="airflow" in sys.modules)
    return _session


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    dags_folder = _ini_dags_folder(early_config)
    if dags_folder is not None:
        _enter_session(dags_folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _session
    if _session is None:
        return
    for name, value in _session.saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_session.home, ignore_errors=True)
    _session = None


def _check_airflow_uses(session: _Session) -> None:
    """Fail clearly if Airflow was configured before the plugin could point it at the session home."""
    from airflow import settings

    expected = f"sqlite:///{session.database}"
    if session.airflow_imported_before or str(settings.SQL_ALCHEMY_CONN) != expected:
        pytest.fail(
            f"Airflow was imported before the dataworks_airflow fixture could set AIRFLOW_HOME: its database is "
            f"{settings.SQL_ALCHEMY_CONN!r}, not the throwaway {expected!r}. Set `{DAGS_FOLDER_INI}` in the pytest "
            "ini file (the plugin then sets AIRFLOW_HOME before any conftest.py is imported), and do not import "
            "Airflow before pytest starts.",
            pytrace=False,
        )


def _migrate(session: _Session) -> None:
    """Create the metadata database once, with the same CLI a deployment uses, and keep it as a template."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        cwd=session.home,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not session.database.exists():
        pytest.fail(
            f"`airflow db migrate` failed (exit {result.returncode}) in {session.home}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    _copy_database(session.database, session.template)


def _copy_database(source: Path, target: Path) -> None:
    # SQLite's backup API copies page by page under SQLite's own locks, so it is safe even while
    # Airflow's engine still has the target file open (a plain file copy is not).
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _release_connections() -> None:
    """Close every connection Airflow's ORM holds, so the database can be overwritten."""
    from airflow import settings

    if settings.Session is not None:
        settings.Session.remove()
    if settings.engine is not None:
        settings.engine.dispose()


@pytest.fixture(scope="session")
def _dataworks_airflow_session(pytestconfig: pytest.Config) -> _Session:
    session = _enter_session(_ini_dags_folder(pytestconfig))
    _check_airflow_uses(session)
    _migrate(session)
    return session


@pytest.fixture
def dataworks_dags_folder(pytestconfig: pytest.Config) -> Path:
    """The folder of the DAG files under test: the ini option ``dataworks_dags_folder``.

    Override this fixture (in a ``conftest.py`` or a test module) to name another folder.
    """
    folder = _ini_dags_folder(pytestconfig)
    if folder is None:
        pytest.fail(
            f"Name the folder of your DAG files: set `{DAGS_FOLDER_INI}` in the pytest ini file "
            "or override the `dataworks_dags_folder` fixture.",
            pytrace=False,
        )
    return folder


@pytest.fixture
def dataworks_conn_id(pytestconfig: pytest.Config) -> str:
    """The connection id the emulator is registered under (ini ``dataworks_conn_id``, default ``dataworks_default``)."""
    return str(pytestconfig.getini(CONN_ID_INI) or DEFAULT_CONN_ID)


@dataclass(frozen=True)
class DataWorksAirflow:
    """What the :func:`dataworks_airflow` fixture gives a test.

    :param home: the session's throwaway ``AIRFLOW_HOME``
    :param database: the SQLite metadata database (a fresh copy of the migrated one for this test)
    :param dags_folder: the DAGs folder Airflow reads in this test
    :param conn_id: the id of the connection that points at :attr:`emulator`
    :param emulator: this test's DataWorks emulator (the ``dataworks_emulator`` fixture)
    """

    home: Path
    database: Path
    dags_folder: Path
    conn_id: str
    emulator: DataWorksEmulator

    def get_dag(self, dag_id: str) -> Any:
        """Parse the DAGs folder and return the DAG ``dag_id``, freshly parsed for this call.

        A fresh parse per call matters: ``dag.test(run_conf=...)`` writes the conf into the task
        objects, so reusing one DAG object would leak one test's conf into the next.
        """
        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow < 3.1
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

        bag = DagBag(dag_folder=str(self.dags_folder))
        dag = bag.get_dag(dag_id)
        if dag is None:
            errors = "\n".join(f"{path}: {error}" for path, error in bag.import_errors.items()) or "none"
            raise LookupError(f"no DAG {dag_id!r} in {self.dags_folder}; import errors: {errors}")
        return dag


@pytest.fixture
def dataworks_airflow(
    dataworks_dags_folder: Path,
    dataworks_conn_id: str,
    dataworks_emulator: DataWorksEmulator,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[DataWorksAirflow]:
    """Everything ``dag.test()`` needs, against a fresh DataWorks emulator.

    - a throwaway ``AIRFLOW_HOME`` whose metadata database is migrated once per session and
      copied afresh for every test;
    - Airflow's DAGs folder set to ``dataworks_dags_folder`` (ini option or overridden fixture);
    - the connection ``dataworks_conn_id`` (default ``dataworks_default``) pointing at the
      emulator, with ``project_id`` from the ini option ``dataworks_project_id`` (default 10000);
    - the proxy variables removed (the SDK would send even loopback calls through a proxy).
    """
    dags_folder = Path(dataworks_dags_folder).resolve()
    if not dags_folder.is_dir():
        pytest.fail(f"the DAGs folder {dags_folder} does not exist", pytrace=False)
    # Asked for here, not as a parameter: pytest sets up session fixtures first, and a test whose DAGs
    # folder is wrong should fail at once, not after the migration.
    session: _Session = request.getfixturevalue("_dataworks_airflow_session")
    from airflow import settings

    for name in _PROXY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    # Airflow 3's dag.test() writes the DAGs of the "dags-folder" bundle to the database; the bundle
    # reads settings.DAGS_FOLDER, which Airflow computed from [core] dags_folder when it was imported.
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags_folder))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(dags_folder))
    project_id = int(pytestconfig.getini(PROJECT_ID_INI) or DEFAULT_PROJECT_ID)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{dataworks_conn_id.upper()}", dataworks_emulator.connection_uri(project_id=project_id)
    )
    _release_connections()
    _copy_database(session.template, session.database)
    try:
        yield DataWorksAirflow(
            home=session.home,
            database=session.database,
            dags_folder=dags_folder,
            conn_id=dataworks_conn_id,
            emulator=dataworks_emulator,
        )
    finally:
        _release_connections()
