"""Abolish a pipeline run and say only what a read of it confirms: the one place every path abolishes.

``AbolishPipelineRun`` answers ``{"Success": false}`` when DataWorks does not accept it, and a 4xx
when the run has finished already (or for reasons nobody documents). So an abolish is asked a few
times with a backoff while DataWorks refuses it, then the run is read back, and the outcome says
what that read shows: "abolished" only when the run reads ``Termination``/``Cancel``; "had already
finished" for another terminal status; otherwise "abolish refused; run X is still Running at stage
PROD". The timeout, the kill (sync and on the triggerer), the check-only end and every give-up use it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks.exceptions import DataWorksError, Remedy, error_remedy

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
    from airflow_provider_dataworks.status import PipelineRun

log = logging.getLogger(__name__)

#: abolish calls while DataWorks refuses (``Success: false`` or a 4xx), and the pauses between them
ABOLISH_ATTEMPTS = 3
ABOLISH_BACKOFF = (0.5, 1.0)
#: reads after an accepted abolish until the run reads finished (DataWorks may apply it a moment later)
CONFIRM_READS = 3
CONFIRM_PAUSE = 1.0


@dataclass(frozen=True)
class AbolishOutcome:
    """What an abolish achieved, as a read of the run confirmed it."""

    #: the run reads ``Termination``/``Cancel`` after the abolish
    abolished: bool
    #: the run is finished (abolished, or it had ended before), so nothing of it goes on
    finished: bool
    #: the run as last read, if a read succeeded
    run: PipelineRun | None
    #: one sentence for logs and task messages
    message: str


def _outcome(run_id: str, run: PipelineRun | None, answer: str, read_error: BaseException | None) -> AbolishOutcome:
    if run is None:
        return AbolishOutcome(
            False,
            False,
            None,
            f"Abolishing pipeline run {run_id} was asked ({answer}), but the run could not be read back to confirm "
            f"it: {read_error}. Check it in the DataWorks console.",
        )
    if run.was_stopped:
        return AbolishOutcome(True, True, run, f"Pipeline run {run_id} was abolished (it reads {run.status}).")
    if run.is_terminal:
        return AbolishOutcome(
            False, True, run, f"Pipeline run {run_id} had already finished ({run.status}); nothing to abolish."
        )
    stage = run.current_stage
    where = f" at stage {stage.code}" if stage is not None else ""
    return AbolishOutcome(
        False,
        False,
        run,
        f"Abolish refused ({answer}); pipeline run {run_id} is still {run.status}{where}.",
    )


def _answer(accepted: bool | None, error: BaseException | None) -> str:
    if error is not None:
        return f"DataWorks answered: {error}"
    return "DataWorks accepted it" if accepted else "DataWorks answered Success: false"


def abolish_and_confirm(
    hook: DataWorksHook, run_id: str, project_id: int, *, sleep: Callable[[float], None] = time.sleep
) -> AbolishOutcome:
    """Abolish ``run_id`` (retrying refusals a few times), read it back, and say what the read shows."""
    accepted: bool | None = None
    error: BaseException | None = None
    run: PipelineRun | None = None
    read_error: BaseException | None = None
    for attempt in range(ABOLISH_ATTEMPTS):
        accepted, error = None, None
        try:
            accepted = hook.abolish_pipeline_run(run_id, project_id)
        except (DataWorksError, ValueError) as err:
            error = err
        run, read_error = _read(hook, run_id, project_id)
        if accepted:
            for _ in range(CONFIRM_READS - 1):
                if run is None or run.is_terminal:
                    break
                sleep(CONFIRM_PAUSE)
                run, read_error = _read(hook, run_id, project_id)
        if (run is not None and run.is_terminal) or accepted or _final(error):
            break
        if attempt < ABOLISH_ATTEMPTS - 1:
            sleep(ABOLISH_BACKOFF[min(attempt, len(ABOLISH_BACKOFF) - 1)])
    return _outcome(run_id, run, _answer(accepted, error), read_error)


async def abolish_and_confirm_async(hook: DataWorksHook, run_id: str, project_id: int) -> AbolishOutcome:
    """:func:`abolish_and_confirm` on the event loop."""
    accepted: bool | None = None
    error: BaseException | None = None
    run: PipelineRun | None = None
    read_error: BaseException | None = None
    for attempt in range(ABOLISH_ATTEMPTS):
        accepted, error = None, None
        try:
            accepted = await hook.abolish_pipeline_run_async(run_id, project_id)
        except (DataWorksError, ValueError) as err:
            error = err
        run, read_error = await _read_async(hook.get_pipeline_run_async, run_id, project_id)
        if accepted:
            for _ in range(CONFIRM_READS - 1):
                if run is None or run.is_terminal:
                    break
                await asyncio.sleep(CONFIRM_PAUSE)
                run, read_error = await _read_async(hook.get_pipeline_run_async, run_id, project_id)
        if (run is not None and run.is_terminal) or accepted or _final(error):
            break
        if attempt < ABOLISH_ATTEMPTS - 1:
            await asyncio.sleep(ABOLISH_BACKOFF[min(attempt, len(ABOLISH_BACKOFF) - 1)])
    return _outcome(run_id, run, _answer(accepted, error), read_error)


def _final(error: BaseException | None) -> bool:
    """Whether asking again cannot help: the credentials may not abolish, the run is gone, or the hook's
    own retries of a transient error were spent already (asking again would multiply them)."""
    return error is not None and error_remedy(error) in (Remedy.PERMISSION, Remedy.NOT_FOUND, Remedy.TRANSIENT)


def _read(hook: DataWorksHook, run_id: str, project_id: int) -> tuple[PipelineRun | None, BaseException | None]:
    try:
        return hook.get_pipeline_run(run_id, project_id), None
    except (DataWorksError, ValueError) as err:
        return None, err


async def _read_async(
    get: Callable[[str, int], Awaitable[Any]], run_id: str, project_id: int
) -> tuple[PipelineRun | None, BaseException | None]:
    try:
        return await get(run_id, project_id), None
    except (DataWorksError, ValueError) as err:
        return None, err
