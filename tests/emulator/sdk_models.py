"""What the installed SDK's response models know: their wire keys and JSON types, by introspection.

``from_map`` silently drops keys it does not know, so parsing a body with the SDK proves nothing
about extra keys. Instead each model's keys are derived from the model itself: every ``__init__``
attribute is set to a probe and ``to_map`` shows under which key it writes it; ``from_map`` is
then checked to read that same key back. :func:`conform` walks a JSON body against a model,
reporting every key the model does not know and every value of the wrong JSON type.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

from darabonba.model import DaraModel

Schema = dict[str, Any]  # wire key -> type hint


class _Probe:
    """Stands in for any attribute value; a nested model's ``to_map`` returns it unchanged."""

    def to_map(self) -> _Probe:
        return self

    def validate(self) -> None:
        return None


def _probe_value(hint: Any, probe: _Probe) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        return [probe]
    if origin is dict:
        return {"k": probe}
    return probe


def _holds(value: Any, probe: _Probe) -> bool:
    if value is probe:
        return True
    if isinstance(value, list):
        return any(v is probe for v in value)
    if isinstance(value, dict):
        return any(v is probe for v in value.values())
    return False


def _sample(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        return []
    if origin is dict or is_model(hint):
        return {}
    return "x"


def is_model(hint: Any) -> bool:
    """Tell whether ``hint`` is an SDK model class."""
    return isinstance(hint, type) and issubclass(hint, DaraModel)


@functools.cache
def model_keys(model: type[DaraModel]) -> Schema:
    """Return the wire keys of ``model`` with the type hint of each."""
    hints = typing.get_type_hints(model.__init__)  # type: ignore[misc]
    hints.pop("return", None)
    schema: Schema = {}
    for attribute, hint in hints.items():
        probe = _Probe()
        instance = model(**{attribute: _probe_value(hint, probe)})
        written = [key for key, value in instance.to_map().items() if _holds(value, probe)]
        if len(written) != 1:
            raise AssertionError(f"{model.__name__}.{attribute}: to_map wrote it under {written}")
        key = written[0]
        read_back = model().from_map({key: _sample(hint)})
        if getattr(read_back, attribute) is None:
            raise AssertionError(f"{model.__name__}.{attribute}: from_map does not read {key!r}")
        schema[key] = hint
    return schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_SCALARS: dict[Any, tuple[str, ...]] = {
    str: ("string",),
    int: ("integer",),
    bool: ("boolean",),
    float: ("integer", "number"),
}


def conform(value: Any, hint: Any, path: str) -> list[str]:
    """Return every way ``value`` (JSON) disagrees with ``hint`` (an SDK model or a field's type)."""
    kind = _json_type(value)
    origin = typing.get_origin(hint)
    if hint is Any:
        return []
    if is_model(hint):
        if kind != "object":
            return [f"{path}: {kind}, the SDK model {hint.__name__} wants an object"]
        schema = model_keys(hint)
        problems = []
        for key, item in value.items():
            if key not in schema:
                problems.append(f"{path}.{key}: a key the SDK model {hint.__name__} does not know")
            else:
                problems += conform(item, schema[key], f"{path}.{key}")
        return problems
    if origin is list:
        if kind != "array":
            return [f"{path}: {kind}, the SDK wants an array"]
        (element,) = typing.get_args(hint)
        return [p for i, item in enumerate(value) for p in conform(item, element, f"{path}[{i}]")]
    if origin is dict:
        # Free-form (e.g. a stage's Detail): any keys, but it must be an object.
        if kind != "object":
            return [f"{path}: {kind}, the SDK wants an object"]
        _, element = typing.get_args(hint)
        return [p for key, item in value.items() for p in conform(item, element, f"{path}.{key}")]
    wanted = _SCALARS.get(hint)
    if wanted is None:
        return [f"{path}: the SDK type {hint!r} is not understood by this check"]
    if kind not in wanted:
        return [f"{path}: {kind} {value!r}, the SDK wants {hint.__name__}"]
    return []


def locate(model: type[DaraModel], path: tuple[str, ...]) -> str:
    """Say where ``path`` (keys, ``"[]"`` for a list element) leads in ``model``.

    :return: ``"known"`` (every key is the model's), ``"free-form"`` (it goes inside a dict the SDK
        leaves untyped, like a stage's ``Detail``), or a sentence saying where it leaves the model.
    """
    hint: Any = model
    for depth, key in enumerate(path):
        where = ".".join(path[: depth + 1])
        if key == "[]":
            if typing.get_origin(hint) is not list:
                return f"{where}: iterates something the SDK does not type as a list"
            (hint,) = typing.get_args(hint)
        elif is_model(hint):
            schema = model_keys(hint)
            if key not in schema:
                return f"{where}: not a key of {hint.__name__}"
            hint = schema[key]
        elif typing.get_origin(hint) is dict:
            return "free-form"
        else:
            return f"{where}: reads a key inside a {getattr(hint, '__name__', hint)} value"
    return "known"
