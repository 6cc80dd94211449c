"""The ``dataworks`` asset URI scheme: a DataWorks object as deployed, ``dataworks://<region>/<workspace>/<object>``.

A DAG scheduled on such an asset runs after each deployment of the object. Three parts:

* :func:`sanitize_uri`, the normaliser Airflow's providers manager registers for the scheme (the provider
  info's ``asset-uris``, and ``dataset-uris`` for Airflow 2.x): it returns the canonical form or raises a
  ``ValueError`` that names the part that is wrong;
* :func:`dataworks_asset`, the one-liner a DAG declares an outlet or a schedule with (an ``Asset``, a
  ``Dataset`` on Airflow 2.x), validated on every Airflow version, without any remote call;
* :func:`announce_deployment`, which ``CreatePipelineRunOperator`` and ``PipelineRunSensor`` call when
  their run succeeded: the object's asset event gets ``extra`` ``{"type": "Online" | "Offline", "pipeline_run_id": …}``.

Canonical form: the scheme and region in lower case, the IDs as decimal numbers without leading zeros, no
trailing slash, no user, port, query or fragment. Airflow itself drops a fragment and a password before it
calls the normaliser; :func:`parse_dataworks_uri` sees the URI as written and refuses those too.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset

    from airflow_provider_dataworks.status import PipelineRun

SCHEME = "dataworks"
#: what a URI of the scheme looks like, for error messages
URI_FORMAT = f"{SCHEME}://<region>/<workspace id>/<object id>, e.g. {SCHEME}://cn-hangzhou/10000/8600000000000000013"
#: an Alibaba Cloud region ID: cn-hangzhou, ap-southeast-1, cn-shanghai-finance-1, cn-north-2-gov-1, ...
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+)+")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class DataWorksObjectRef:
    """The parts of a ``dataworks`` URI, validated."""

    region: str
    project_id: int
    object_id: str

    @property
    def uri(self) -> str:
        """The canonical URI."""
        return f"{SCHEME}://{self.region}/{self.project_id}/{self.object_id}"


def _bad(uri: str, what: str) -> ValueError:
    return ValueError(f"Invalid DataWorks asset URI {uri!r}: {what}. Expected {URI_FORMAT}.")


def _region(value: Any, uri: str) -> str:
    text = "" if value is None else str(value).strip().lower()
    if not text:
        raise _bad(uri, "the region is missing")
    if not _REGION.fullmatch(text):
        raise _bad(uri, f"region {value!r} is not an Alibaba Cloud region ID such as cn-hangzhou")
    return text


def _number(value: Any, name: str, uri: str) -> int:
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if not text:
        raise _bad(uri, f"the {name} is missing")
    if not _DIGITS.fullmatch(text) or int(text) == 0:
        raise _bad(uri, f"the {name} must be a positive number, got {value!r}")
    return int(text)


def _parts(parts: urllib.parse.SplitResult, uri: str) -> DataWorksObjectRef:
    """Validate the split URI; every refusal names the part."""
    if parts.scheme.lower() != SCHEME:
        raise _bad(uri, f"the scheme must be {SCHEME!r}, got {parts.scheme!r}")
    if "@" in parts.netloc:
        raise _bad(uri, "it must not carry a user or password")
    if ":" in parts.netloc:
        raise _bad(uri, "it must not carry a port")
    if parts.query:
        raise _bad(uri, f"it must not carry a query, got {parts.query!r}")
    if parts.fragment:
        raise _bad(uri, f"it must not carry a fragment, got {parts.fragment!r}")
    region = _region(parts.netloc, uri)
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if len(segments) < 2:
        missing = "the workspace ID and the object ID are" if not segments else "the object ID is"
        raise _bad(uri, f"{missing} missing")
    if len(segments) > 2:
        raise _bad(uri, f"the path has {len(segments)} parts after the region; it takes two")
    project_id = _number(segments[0], "workspace ID", uri)
    object_id = _number(segments[1], "object ID", uri)
    return DataWorksObjectRef(region=region, project_id=project_id, object_id=str(object_id))


def parse_dataworks_uri(uri: str) -> DataWorksObjectRef:
    """Return the region, workspace and object of a ``dataworks`` URI, or raise ``ValueError`` naming what is wrong."""
    text = str(uri).strip()
    return _parts(urllib.parse.urlsplit(text), text)


def sanitize_uri(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    """Return the canonical form of a split ``dataworks`` URI: Airflow's URI handler for the scheme.

    Airflow's providers manager registers it from the provider info and calls it with the URI already split
    (scheme in lower case, fragment and password dropped, trailing slashes removed) whenever an asset of
    the scheme is built; the ``ValueError`` it raises fails the asset (a DAG file's import error on
    Airflow 3; a warning on Airflow 2.x unless ``[core] strict_dataset_uri_validation`` is on).
    """
    ref = _parts(parts, urllib.parse.urlunsplit(parts))
    return urllib.parse.SplitResult(SCHEME, ref.region, f"/{ref.project_id}/{ref.object_id}", "", "")


def dataworks_asset(object_id: str | int, *, project_id: str | int, region: str) -> Asset:
    """Return the asset of one DataWorks object as deployed, to list in ``outlets`` or a ``schedule``.

    It is an ``Asset`` (a ``Dataset`` on Airflow 2.x) named by its canonical URI, checked here on every
    Airflow version, with no remote call: a bad part fails the DAG file's import, naming the part.

    :param object_id: the node's or workflow's ID, as given to ``CreatePipelineRunOperator``.
    :param project_id: the workspace ID.
    :param region: the workspace's region, e.g. ``cn-hangzhou``.
    """
    from airflow.providers.common.compat.sdk import Asset

    raw = f"{SCHEME}://{region}/{project_id}/{object_id}"
    ref = DataWorksObjectRef(
        region=_region(region, raw),
        project_id=_number(project_id, "workspace ID", raw),
        object_id=str(_number(object_id, "object ID", raw)),
    )
    return Asset(ref.uri)


def _canonical_id(value: Any) -> str:
    text = str(value).strip()
    return str(int(text)) if _DIGITS.fullmatch(text) else text


def _dataworks_outlets(outlets: Iterable[Any]) -> list[tuple[Any, DataWorksObjectRef]]:
    """The task's outlets that are ``dataworks`` assets, with their parts (aliases and other schemes left out)."""
    found = []
    for outlet in outlets or ():
        uri = getattr(outlet, "uri", None)
        if not isinstance(uri, str) or not uri.lower().startswith(f"{SCHEME}://"):
            continue
        try:
            found.append((outlet, parse_dataworks_uri(uri)))
        except ValueError:
            continue  # Airflow 2.x only warns about a bad URI; such an asset names no object
    return found


def announce_deployment(
    context: Mapping[str, Any],
    outlets: Iterable[Any],
    run: PipelineRun,
    *,
    run_type: str,
    project_id: int | None,
    object_id: str | None = None,
    logger: Any = None,
) -> list[str]:
    """Put the deployment on the asset events of the task's ``dataworks`` outlets for this object.

    Called by the operator and the sensor when their run ended. Only a run that succeeded is announced:
    its events get ``extra`` ``{"type": run_type, "pipeline_run_id": run.id}``. An outlet matches when its
    workspace is the run's and, where the caller knows the object (the operator), its object is the run's.
    Airflow records the events themselves when the task succeeds, with or without this extra.

    :return: the URIs whose events were given the extra.
    """
    if not run.is_success or project_id is None:
        return []
    accessors = context.get("outlet_events")
    if accessors is None:  # an Airflow without outlet event accessors: nothing to add the extra to
        return []
    announced = []
    for outlet, ref in _dataworks_outlets(outlets):
        if ref.project_id != project_id or (object_id is not None and ref.object_id != _canonical_id(object_id)):
            continue
        accessors[outlet].extra = {"type": run_type, "pipeline_run_id": run.id}
        announced.append(ref.uri)
    if announced and logger is not None:
        logger.info("Asset event(s) of %s: %s of pipeline run %s.", ", ".join(announced), run_type, run.id)
    return announced
