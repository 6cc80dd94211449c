"""The one contract every trigger event of this provider follows, checked by one function.

An event crosses a process boundary (triggerer → a fresh worker) as JSON. Whatever it is about
(a pipeline run, a Data Quality evaluation), it carries ``status`` (``success``, ``failed``,
``timeout`` or ``error``), the ID of what it is about, a ``message`` and the last record read of
it (a JSON object, or ``null`` when nothing could be read). :func:`check_event`
refuses a missing, malformed or unknown event, or one about something else, before the
caller reads the rest: such an event is never read as success.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from airflow_provider_dataworks.exceptions import InvalidTriggerEventError

EventStatus = Literal["success", "failed", "timeout", "error"]
EVENT_STATUSES: tuple[str, ...] = ("success", "failed", "timeout", "error")


def check_event(
    event: Any,
    *,
    id_key: str,
    expected_id: Any = None,
    subject: str,
    record: str,
    required: tuple[str, ...] = (),
) -> Mapping[str, Any]:
    """Return ``event`` once its envelope is valid.

    :param id_key: the key of the ID the event is about (``pipeline_run_id``, ``instance_id``).
    :param expected_id: the ID the task waits for; an event about another one is refused.
    :param subject: what the ID names, for messages ("pipeline run").
    :param record: the key of the record the event carries (``run``, ``evaluation``).
    :param required: keys the event must have besides ``status``, ``id_key``, ``record`` and ``message``.
    :raises InvalidTriggerEventError: no event, not a mapping, a missing key, an unknown status,
        an invalid ID or one that is not ``expected_id``, a message that is not a string, a record
        that is neither a mapping nor ``None``.
    """
    if event is None:
        raise InvalidTriggerEventError(
            f"The task resumed without a trigger event; the {subject}'s outcome is unknown, so it is not "
            "treated as success."
        )
    if not isinstance(event, Mapping):
        raise InvalidTriggerEventError(f"The trigger event must be a mapping, got {type(event).__name__}.")
    missing = [key for key in ("status", id_key, *required, record, "message") if key not in event]
    if missing:
        raise InvalidTriggerEventError(f"The trigger event lacks {', '.join(missing)}: {dict(event)!r}.")
    status = event["status"]
    if status not in EVENT_STATUSES:
        raise InvalidTriggerEventError(
            f"The trigger event has the unknown status {status!r} (expected one of {', '.join(EVENT_STATUSES)})."
        )
    found = event[id_key]
    if isinstance(found, bool) or found in (None, "") or not isinstance(found, (str, int)):
        raise InvalidTriggerEventError(f"The trigger event has no valid {id_key}: {found!r}.")
    if expected_id is not None and str(found) != str(expected_id):
        raise InvalidTriggerEventError(
            f"The trigger event is about {subject} {found}, but this task waits for {expected_id}."
        )
    if not isinstance(event["message"], str):
        raise InvalidTriggerEventError(f"The trigger event's message must be a string, got {event['message']!r}.")
    if (data := event[record]) is not None and not isinstance(data, Mapping):
        raise InvalidTriggerEventError(f"The trigger event's {record} must be a mapping or null, got {data!r}.")
    return event
