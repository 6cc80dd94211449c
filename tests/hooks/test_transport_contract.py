"""The shared-session transport's contract with darabonba-core: exact signature, no private SDK helpers."""

from __future__ import annotations

import ssl
from importlib import metadata
from importlib.metadata import requires

import pytest
from darabonba.core import DaraCore
from packaging.requirements import Requirement

from airflow_provider_dataworks.hooks import transport

NODE = "8600000000000000002"


async def _extra(request, runtime_option, retry):  # a future signature with one more parameter
    return None


async def _renamed(req, runtime):
    return None


def _sync(request, runtime_option):
    return None


def test_the_installed_darabonba_core_has_the_wrapped_signature():
    assert transport.install() is True
    original = transport._original
    assert transport.signature_supported(original)


@pytest.mark.parametrize("function", [_extra, _renamed, _sync])
def test_any_other_signature_is_refused(function):
    assert not transport.signature_supported(function)


async def test_unknown_arguments_go_to_the_original_untouched():
    transport.install()
    wrapper = DaraCore.async_do_action
    with transport.shared_transport(), pytest.raises(TypeError, match="unexpected keyword argument 'future'"):
        # the wrapper does not know `future`: the original gets it (and refuses it, being 1.0.x)
        await wrapper(object(), {}, future=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("TLSv1.2", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3), (None, None)],
)
def test_tls_minimum_version_is_set_without_the_sdks_private_helper(value, expected):
    context = transport._ssl_context(None, None, value)
    if expected is not None:
        assert context.minimum_version == expected
    with pytest.raises(ValueError, match="tlsMinVersion"):
        transport._ssl_context(None, None, "TLSv9")


def test_darabonba_core_and_certifi_are_declared_with_lower_bounds_only():
    """No upper bound on an SDK package: the transport's gate is at run time, not a resolver conflict."""
    declared = {r.name: r.specifier for r in map(Requirement, requires("airflow-provider-dataworks") or [])}
    assert {s.operator for s in declared["darabonba-core"]} == {">="}
    assert declared["darabonba-core"].contains("1.1.0") and declared["darabonba-core"].contains("2.0.0")
    assert ">=" in {s.operator for s in declared["certifi"]}


@pytest.mark.parametrize(
    ("version", "verified"),
    [("1.0.0", True), ("1.0.9", True), ("1.1.0", False), ("1.1.0rc1", False), ("2.0.0", False), ("dev", False)],
)
def test_the_transport_is_verified_for_darabonba_core_1_0_only(version, verified):
    assert transport.core_verified(version) is verified


def _a_newer_core(monkeypatch, version: str = "1.1.0") -> None:
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: version if name == "darabonba-core" else real(name))


@pytest.fixture
def fresh_install(monkeypatch):
    """The transport as a new process finds it: nothing wrapped yet (restored afterwards)."""
    unwrapped = transport._original or DaraCore.async_do_action
    monkeypatch.setattr(DaraCore, "async_do_action", staticmethod(unwrapped))
    monkeypatch.setattr(transport, "_installed", None)
    monkeypatch.setattr(transport, "_original", None)


@pytest.mark.parametrize("why", ["newer-darabonba-core", "unknown-signature"])
async def test_an_unverified_core_falls_back_to_the_thread_pool_and_reads_the_same(
    emu, hook, fresh_install, monkeypatch, why
):
    """A darabonba-core 1.1 (or a changed signature): nothing is wrapped, the SDK's own calls run on threads."""
    calls = []

    async def changed(request, runtime_option, retry):  # a future signature with one more parameter
        calls.append(request)
        raise AssertionError("the unverified async_do_action must not be called")

    if why == "newer-darabonba-core":
        _a_newer_core(monkeypatch)
        unwrapped = DaraCore.async_do_action
    else:
        monkeypatch.setattr(DaraCore, "async_do_action", staticmethod(changed))
        unwrapped = DaraCore.async_do_action
    run_id = hook.create_pipeline_run(NODE)

    run = await hook.get_pipeline_run_async(run_id)

    assert run.id == run_id and run.status in ("Init", "Running")
    assert transport.install() is False
    assert DaraCore.async_do_action is unwrapped  # nothing was wrapped
    assert calls == []
    assert [call["action"] for call in emu.calls("GetPipelineRun")] == ["GetPipelineRun"]
