"""The shared-session transport's contract with darabonba-core: exact signature, no private SDK helpers."""

from __future__ import annotations

import ssl
from importlib.metadata import requires

import pytest
from darabonba.core import DaraCore
from packaging.requirements import Requirement

from airflow_provider_dataworks.hooks import transport


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


def test_darabonba_core_and_certifi_are_declared_with_bounds():
    declared = {r.name: r.specifier for r in map(Requirement, requires("airflow-provider-dataworks") or [])}
    assert {s.operator for s in declared["darabonba-core"]} == {">=", "<"}
    assert ">=" in {s.operator for s in declared["certifi"]}
