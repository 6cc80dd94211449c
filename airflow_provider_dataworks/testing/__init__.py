"""A local stand-in for the DataWorks OpenAPI, for tests, demos and benchmarks.

The real Alibaba Cloud SDK talks to it unchanged (signatures are checked). Runtime code of the
provider never imports this package.

.. code-block:: python

    from airflow_provider_dataworks.testing import DataWorksEmulator

    with DataWorksEmulator(stage_seconds=0.0) as emu:
        Config(access_key_id=emu.access_key_id, access_key_secret=emu.access_key_secret,
               endpoint=emu.endpoint, protocol=emu.protocol, region_id="cn-hangzhou")

Names are imported on first use: the pytest plugin lives in this package and is loaded by every
pytest run of anyone who installs the provider, so importing the package must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import DEFAULT_ACCOUNT_ID, Credential
    from .controller import PROXY_ENV_VARS, DataWorksEmulator, EmulatorControlError
    from .core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
    from .errors import OBJECT_NOT_FOUND_CODE
    from .faults import KINDS as FAULT_KINDS
    from .faults import Fault
    from .seed import default_seed, load_seed

_EXPORTS = {
    "DEFAULT_ACCESS_KEY_ID": ("core", "DEFAULT_ACCESS_KEY_ID"),
    "DEFAULT_ACCESS_KEY_SECRET": ("core", "DEFAULT_ACCESS_KEY_SECRET"),
    "DEFAULT_ACCOUNT_ID": ("auth", "DEFAULT_ACCOUNT_ID"),
    "FAULT_KINDS": ("faults", "KINDS"),
    "OBJECT_NOT_FOUND_CODE": ("errors", "OBJECT_NOT_FOUND_CODE"),
    "PROXY_ENV_VARS": ("controller", "PROXY_ENV_VARS"),
    "Credential": ("auth", "Credential"),
    "DataWorksEmulator": ("controller", "DataWorksEmulator"),
    "EmulatorControlError": ("controller", "EmulatorControlError"),
    "Fault": ("faults", "Fault"),
    "default_seed": ("seed", "default_seed"),
    "load_seed": ("seed", "load_seed"),
}

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_ACCOUNT_ID",
    "FAULT_KINDS",
    "OBJECT_NOT_FOUND_CODE",
    "PROXY_ENV_VARS",
    "Credential",
    "DataWorksEmulator",
    "EmulatorControlError",
    "Fault",
    "default_seed",
    "load_seed",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value
