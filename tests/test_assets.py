"""The ``dataworks`` asset URI scheme: its normaliser as Airflow calls it, the helper, and the events of a deployment.

The normaliser is reached the way a DAG reaches it: by building an ``Asset`` (Airflow's providers manager
looks the scheme up in the provider info). The deployments run under ``dag.test()`` against the emulator and
the assertions read Airflow's metadata database: which asset events were recorded, with which ``extra``.
"""

from __future__ import annotations

import textwrap
from typing import Any
from urllib.parse import urlsplit

import pytest
from compat import versions

from airflow_provider_dataworks.assets import dataworks_asset, parse_dataworks_uri, sanitize_uri

WORKSPACE = 10000
WORKFLOW = "8600000000000000001"  # not deployed in the emulator's seed
DEPLOYED_NODE = "8600000000000000004"  # deployed in the seed: the undeploy's object
CANONICAL = "dataworks://cn-hangzhou/10000/8600000000000000013"

GOOD_URIS = [
    pytest.param(CANONICAL, CANONICAL, id="canonical"),
    pytest.param("DataWorks://CN-Hangzhou/10000/8600000000000000013", CANONICAL, id="upper-case"),
    pytest.param("dataworks://cn-hangzhou/010000/08600000000000000013", CANONICAL, id="leading-zeros"),
    pytest.param("dataworks://cn-hangzhou/10000/8600000000000000013/", CANONICAL, id="trailing-slash"),
    pytest.param("dataworks://cn-shanghai-finance-1/1/2", "dataworks://cn-shanghai-finance-1/1/2", id="finance-region"),
]
#: URI → the words the error must contain (naming the part that is wrong)
BAD_URIS = [
    pytest.param("dataworks://cn-hangzhou/10000", "the object ID is missing", id="no-object"),
    pytest.param("dataworks://cn-hangzhou", "the workspace ID and the object ID are missing", id="no-ids"),
    pytest.param("dataworks:///10000/86", "the region is missing", id="no-region"),
    pytest.param("dataworks://cn-hangzhou/my_ws/86", "the workspace ID must be a positive number", id="ws-name"),
    pytest.param("dataworks://cn-hangzhou/10000/wf_orders", "the object ID must be a positive number", id="obj-name"),
    pytest.param("dataworks://cn-hangzhou/0/86", "the workspace ID must be a positive number", id="ws-zero"),
    pytest.param("dataworks://cn_hangzhou/10000/86", "region 'cn_hangzhou' is not an Alibaba Cloud", id="region"),
    pytest.param("dataworks://hangzhou/10000/86", "region 'hangzhou' is not an Alibaba Cloud region", id="region-2"),
    pytest.param("dataworks://cn-hangzhou/10000/86/1", "the path has 3 parts after the region", id="extra-part"),
    pytest.param("dataworks://cn-hangzhou/10000/86?type=Online", "must not carry a query", id="query"),
    pytest.param("dataworks://cn-hangzhou:443/10000/86", "must not carry a port", id="port"),
    pytest.param("dataworks://me@cn-hangzhou/10000/86", "must not carry a user", id="user"),
]


# ------------------------------------------------------------------ the normaliser, through Airflow


@pytest.mark.min_airflow("3.0")  # Airflow 2.x turns a handler's ValueError into a warning (see the next test)
def test_airflow_uses_the_providers_normaliser_for_the_scheme():
    try:  # the Task SDK's own providers manager, where this Airflow has one
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Manager
    except ImportError:  # older Airflow 3: the core providers manager
        from airflow.providers_manager import ProvidersManager as Manager

    assert Manager().asset_uri_handlers["dataworks"] is sanitize_uri


@pytest.mark.min_airflow("3.0")
@pytest.mark.parametrize(("uri", "canonical"), GOOD_URIS)
def test_an_asset_of_the_scheme_gets_the_canonical_uri(uri, canonical):
    from airflow.providers.common.compat.sdk import Asset

    assert Asset(uri).uri == canonical


# Airflow 3.0 accepts a URI with a user part without asking the handler; dataworks_asset() and the
# parser refuse it on every version (test_the_parser_names_the_wrong_part_on_every_airflow)
@pytest.mark.min_airflow("3.1")
@pytest.mark.parametrize(("uri", "error"), BAD_URIS)
def test_a_malformed_uri_fails_the_asset_naming_the_part(uri, error):
    from airflow.providers.common.compat.sdk import Asset

    with pytest.raises(ValueError, match="Invalid DataWorks asset URI") as raised:
        Asset(uri)
    assert error in str(raised.value)
    assert "dataworks://<region>/<workspace id>/<object id>" in str(raised.value)


@pytest.mark.parametrize(("uri", "canonical"), GOOD_URIS)
def test_the_normaliser_returns_the_canonical_parts(uri, canonical):
    parts = urlsplit(uri.lower() if uri.startswith("DataWorks") else uri)
    # as Airflow hands it over: trailing slashes removed
    parts = parts._replace(path=parts.path.rstrip("/"))
    assert sanitize_uri(parts).geturl() == canonical


@pytest.mark.parametrize(("uri", "error"), BAD_URIS)
def test_the_parser_names_the_wrong_part_on_every_airflow(uri, error):
    with pytest.raises(ValueError, match="Invalid DataWorks asset URI") as raised:
        parse_dataworks_uri(uri)
    assert error in str(raised.value)


def test_a_fragment_is_refused_where_airflow_would_drop_it_silently():
    with pytest.raises(ValueError, match="must not carry a fragment, got 'prod'"):
        parse_dataworks_uri(f"{CANONICAL}#prod")


# ------------------------------------------------------------------ the helper


def test_the_helper_returns_the_objects_asset():
    asset = dataworks_asset(8600000000000000013, project_id="10000", region="CN-Hangzhou")

    assert asset.uri == CANONICAL
    assert type(asset).__name__ == ("Asset" if versions.AIRFLOW_V_3 else "Dataset")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"object_id": "", "project_id": 10000, "region": "cn-hangzhou"}, "the object ID is missing"),
        ({"object_id": "wf", "project_id": 10000, "region": "cn-hangzhou"}, "the object ID must be a positive"),
        ({"object_id": "86", "project_id": "ws", "region": "cn-hangzhou"}, "the workspace ID must be a positive"),
        ({"object_id": "86", "project_id": True, "region": "cn-hangzhou"}, "the workspace ID is missing"),
        ({"object_id": "86", "project_id": 10000, "region": ""}, "the region is missing"),
        ({"object_id": "86", "project_id": 10000, "region": "Hangzhou"}, "region 'Hangzhou' is not"),
    ],
)
def test_the_helper_refuses_a_bad_part_by_name(kwargs, error):
    object_id = kwargs.pop("object_id")
    with pytest.raises(ValueError, match="Invalid DataWorks asset URI") as raised:
        dataworks_asset(object_id, **kwargs)
    assert error in str(raised.value)


# ------------------------------------------------------------------ deployments announce themselves

DAG_FILE = f'''
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_dataworks.assets import dataworks_asset
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

START = pendulum.datetime(2025, 1, 1, tz="UTC")
OTHER = dataworks_asset("8600000000000000002", project_id={WORKSPACE}, region="cn-hangzhou")

with DAG("assets_deploy", schedule=None, start_date=START, catchup=False):
    CreatePipelineRunOperator(
        task_id="deploy",
        object_id="{WORKFLOW}",
        deferrable=True,
        poll_interval=0.05,
        outlets=[dataworks_asset("{WORKFLOW}", project_id={WORKSPACE}, region="cn-hangzhou"), OTHER],
    )

with DAG("assets_undeploy", schedule=None, start_date=START, catchup=False):
    CreatePipelineRunOperator(
        task_id="undeploy",
        object_id="{DEPLOYED_NODE}",
        type="Offline",
        poll_interval=0.05,
        outlets=[dataworks_asset("{DEPLOYED_NODE}", project_id={WORKSPACE}, region="cn-hangzhou")],
    )
'''


@pytest.fixture(scope="module")
def asset_dags(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The deploy and undeploy DAGs, parsed from a DAGs folder (``dag.test()`` syncs that bundle)."""
    from airflow import settings

    folder = tmp_path_factory.mktemp("asset-dags")
    (folder / "asset_dags.py").write_text(textwrap.dedent(DAG_FILE))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
        mp.setattr(settings, "DAGS_FOLDER", str(folder))
        bag = versions.dag_bag(str(folder))
        assert not bag.import_errors, bag.import_errors
        yield bag


@pytest.fixture
def run_dag(asset_dags: Any, dataworks_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", dataworks_emulator.connection_uri(project_id=WORKSPACE))

    def run(dag_id: str) -> Any:
        return asset_dags.get_dag(dag_id).test()

    return run


def recorded_events(dag_run: Any) -> dict[str, list[dict[str, Any]]]:
    """The asset events the DAG run recorded: URI → the events' ``extra``."""
    from airflow.utils.session import create_session

    if versions.AIRFLOW_V_3:
        from airflow.models.asset import AssetEvent as Event
        from airflow.models.asset import AssetModel as Model

        asset_id = Event.asset_id
    else:
        from airflow.models.dataset import DatasetEvent as Event
        from airflow.models.dataset import DatasetModel as Model

        asset_id = Event.dataset_id
    with create_session() as session:
        rows = (
            session.query(Model.uri, Event.extra)
            .join(Event, asset_id == Model.id)
            .filter(Event.source_dag_id == dag_run.dag_id, Event.source_run_id == dag_run.run_id)
            .all()
        )
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, extra in rows:
        events.setdefault(uri, []).append(dict(extra or {}))
    return events


def the_run(emu: Any, object_id: str) -> dict[str, Any]:
    (run,) = emu.runs(object_id=object_id, project_id=WORKSPACE)
    return run


# Under dag.test(), Airflow 3.0 refuses an outlet asset no DAG processor registered
# (AirflowInactiveAssetInInletOrOutletException) and 2.11 records no event; these run from 3.1 on
# (2.11 and 3.0 under a real scheduler are not tested).
@pytest.mark.min_airflow("3.1")
def test_a_deployment_announces_online_with_its_run_on_the_objects_asset(run_dag, dataworks_emulator):
    dag_run = run_dag("assets_deploy")

    run = the_run(dataworks_emulator, WORKFLOW)
    assert run["status"] == "Success"
    assert str(dag_run.state) == "success"
    events = recorded_events(dag_run)
    assert events[f"dataworks://cn-hangzhou/{WORKSPACE}/{WORKFLOW}"] == [
        {"type": "Online", "pipeline_run_id": run["id"]}
    ]
    # another object's asset in the same outlets gets Airflow's plain event, not this deployment's extra
    assert events[f"dataworks://cn-hangzhou/{WORKSPACE}/8600000000000000002"] == [{}]


# Under dag.test(), Airflow 3.0 refuses an outlet asset no DAG processor registered
# (AirflowInactiveAssetInInletOrOutletException) and 2.11 records no event; these run from 3.1 on
# (2.11 and 3.0 under a real scheduler are not tested).
@pytest.mark.min_airflow("3.1")
def test_an_undeployment_announces_offline_with_its_run(run_dag, dataworks_emulator):
    dag_run = run_dag("assets_undeploy")

    run = the_run(dataworks_emulator, DEPLOYED_NODE)
    assert run["status"] == "Success"
    assert dataworks_emulator.get_object(WORKSPACE, DEPLOYED_NODE)["deployed"] is False
    assert recorded_events(dag_run) == {
        f"dataworks://cn-hangzhou/{WORKSPACE}/{DEPLOYED_NODE}": [{"type": "Offline", "pipeline_run_id": run["id"]}]
    }


# Under dag.test(), Airflow 3.0 refuses an outlet asset no DAG processor registered
# (AirflowInactiveAssetInInletOrOutletException) and 2.11 records no event; these run from 3.1 on
# (2.11 and 3.0 under a real scheduler are not tested).
@pytest.mark.min_airflow("3.1")
def test_a_failed_deployment_records_no_event(run_dag, dataworks_emulator):
    dataworks_emulator.add_object(WORKSPACE, WORKFLOW, "wf", fail_at_stage="PROD_CHECK", fail_message="check failed")

    dag_run = run_dag("assets_deploy")

    assert the_run(dataworks_emulator, WORKFLOW)["status"] == "Fail"
    assert str(dag_run.state) == "failed"
    assert recorded_events(dag_run) == {}
