"""Hypothesis strategies: what a schedule deploys (the :class:`~.task.Config`) and which faults it injects."""

from __future__ import annotations

from hypothesis import strategies as st

from .task import Config

BASIC, STANDARD = 10000, 20000
OBJECT_ID = "8600000000000009001"
BASIC_STAGES = (("BUILD_PACKAGE", "Build"), ("PROD_CHECK", "Check"), ("PROD", "Deploy"))
STANDARD_STAGES = (
    ("BUILD_PACKAGE", "Build"),
    ("DEV_CHECK", "Check"),
    ("DEV", "Deploy"),
    ("PROD_CHECK", "Check"),
    ("PROD", "Deploy"),
)
#: an object's own stages: a Delete stage between the checks and the deploy (check-only must stop before it)
WITH_DELETE = (("BUILD_PACKAGE", "Build"), ("PROD_CHECK", "Check"), ("CLEANUP", "Delete"), ("PROD", "Deploy"))
#: no Build or Check stage at all (check-only must give up)
NO_CHECKS = (("CLEANUP", "Delete"), ("PROD", "Deploy"))

ACTIONS = (
    "CreatePipelineRun",
    "GetPipelineRun",
    "ListPipelineRuns",
    "ExecPipelineRunStage",
    "AbolishPipelineRun",
    "ListPipelineRunItems",
)
#: (kind, HTTP status): throttling, 5xx, a gateway's HTML 502, no answer (not applied / applied), an answer
#: after the read timeout (applied), Success: false, a permission error, an unknown 4xx
FAULTS = (
    ("http_error", 429),
    ("http_error", 500),
    ("http_error", 503),
    ("html_502", None),
    ("drop", None),
    ("commit_then_drop", None),
    ("delay", None),
    ("not_started", None),
    ("http_error", 403),
    ("http_error", 400),
)

#: seconds: the connection's read timeout, and the delay of an answer that outlasts it
READ_TIMEOUT = 1.0
LATE_ANSWER = 1.02

#: seconds: the wait of a try ends here (short ones make the clock pass the timeout)
SHORT_TIMEOUTS = (0.3, 0.8)
LONG_TIMEOUT = 5.0


@st.composite
def configs(draw: st.DrawFn) -> Config:
    deferrable = draw(st.booleans())
    project_id = draw(st.sampled_from((BASIC, STANDARD)))
    custom = project_id == BASIC and draw(st.integers(0, 5)) == 0
    if custom:
        stages = draw(st.sampled_from((WITH_DELETE, NO_CHECKS)))
    else:
        stages = BASIC_STAGES if project_id == BASIC else STANDARD_STAGES
    codes = [code for code, _ in stages]
    # the first stage starts by itself: holding or failing a later one is what the task meets
    later = codes[1:]
    fail_at = draw(st.none() | st.sampled_from(later)) if draw(st.integers(0, 3)) == 0 else None
    approval = (draw(st.sampled_from(later)),) if draw(st.integers(0, 3)) == 0 else ()
    mode = draw(st.sampled_from(("default", "normal", "auto", "advance", "check_only")))
    run_mode = auto_until = advance_until = None
    check_only = False
    if mode == "normal":
        run_mode = "Normal"
    elif mode == "auto":
        run_mode = "Auto"
        auto_until = draw(st.sampled_from(codes))
        advance_until = draw(st.none() | st.sampled_from(codes))
    elif mode == "advance":
        advance_until = draw(st.sampled_from(codes))
    elif mode == "check_only":
        check_only = True
        run_mode = draw(st.sampled_from((None, "Normal")))
    execution_timeout = None
    if draw(st.integers(0, 4)) == 0:
        timeout, execution_timeout = LONG_TIMEOUT, draw(st.sampled_from(SHORT_TIMEOUTS))
    elif approval or draw(st.integers(0, 3)) == 0:
        timeout = draw(st.sampled_from(SHORT_TIMEOUTS))
    else:
        timeout = LONG_TIMEOUT
    return Config(
        deferrable=deferrable,
        project_id=project_id,
        object_id=OBJECT_ID,
        stages=stages,
        custom_stages=custom,
        fail_at=fail_at,
        approval=approval,
        stage_seconds=draw(st.sampled_from((0.0, 0.0, 2.0, 5.0))),
        with_store=draw(st.booleans()),
        retries=draw(st.integers(0, 3)),
        run_mode=run_mode,
        auto_until=auto_until,
        advance_until=advance_until,
        check_only=check_only,
        timeout=timeout,
        execution_timeout=execution_timeout,
        cancel_on_timeout=draw(st.integers(0, 4)) != 0,
        cancel_on_kill=draw(st.integers(0, 4)) != 0,
        report=draw(st.booleans()),
        description=draw(st.none() | st.just("Release of the sales marts; " * 12)),
    )
