"""The trigger survives the installed Airflow's own trigger storage: encrypted, stored, rebuilt.

The triggerer rebuilds a trigger from the row ``Trigger.from_object`` wrote (classpath plus
kwargs, encrypted when a Fernet key is set), so this is the path a deferred task takes on every
supported version, not only ``serialize()`` called on itself.
"""

from __future__ import annotations

import importlib

from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger


def test_trigger_round_trips_through_airflows_trigger_row() -> None:
    from airflow.models.trigger import Trigger

    original = PipelineRunTrigger(
        pipeline_run_id="run-1",
        project_id=10000,
        dataworks_conn_id="my_conn",
        region="cn-shanghai",
        poll_interval=2.5,
        end_time=1_900_000_000.25,
        advance_stages=True,
        advance_until_stage="DEV",
        retry_policy={"max_attempts": 3, "base_delay": 0.5, "max_delay": 4.0},
        cancel_on_kill=True,
        executed_stages=["DEV"],
        next_poll_at=1_800_000_000.5,
    )

    row = Trigger.from_object(original)
    module_name, class_name = row.classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module_name), class_name)(**row.kwargs)

    assert isinstance(rebuilt, PipelineRunTrigger)
    assert rebuilt.serialize() == original.serialize()
