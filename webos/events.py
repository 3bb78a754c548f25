"""Event names and event declarations.

An event name is ``segment:segment[:segment...]`` with lowercase
``[a-z][a-z0-9_]*`` segments. Each event is a pluggy hookspec whose name is
the event name with ``:`` replaced by ``_`` (``auth:login:success`` is the
hook ``auth_login_success``).

A plugin declares an event next to its code::

    @event("blogger:post:published")
    def blogger_post_published(payload: PostPublished) -> None:
        \"\"\"Emitted after a post is stored and visible.\"\"\"

The decorator only marks the function; the kernel turns the marks it finds in
a plugin into hookspecs when it loads that plugin.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, get_type_hints, is_typeddict

from .exceptions import DeclarationError, EventNameError, InvalidPayloadError

__all__ = [
    "EventSpec",
    "event",
    "hook_name",
    "matches",
    "suggest",
    "validate_event_name",
    "validate_event_pattern",
]

F = TypeVar("F", bound=Callable[..., Any])

_SEGMENT = r"[a-z][a-z0-9_]*"
_EVENT_NAME = re.compile(rf"{_SEGMENT}(?::{_SEGMENT})+")
_PATTERN_PREFIX = re.compile(rf"{_SEGMENT}(?::{_SEGMENT})*")
EVENT_MARK = "__webos_event__"


def validate_event_name(name: object) -> str:
    """Return ``name`` if it is a well-formed event name, else raise `EventNameError`."""
    if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
        raise EventNameError(
            f"Malformed event name {name!r}: an event name is two or more lowercase "
            "segments joined by ':', each matching [a-z][a-z0-9_]* "
            "(for example 'blogger:post:published')."
        )
    return name


def validate_event_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is ``*`` or ``segment[:segment...]:*``, else raise."""
    if pattern == "*":
        return pattern
    if (
        not isinstance(pattern, str)
        or not pattern.endswith(":*")
        or not _PATTERN_PREFIX.fullmatch(pattern[:-2])
    ):
        raise EventNameError(
            f"Malformed event pattern {pattern!r}: a wildcard is '*' (every event) or "
            "event segments followed by ':*' (for example 'auth:*', every event under auth)."
        )
    return pattern


def matches(pattern: str, name: str) -> bool:
    """Whether the event ``name`` falls under ``pattern`` (an event name or a wildcard)."""
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return name.startswith(pattern[:-1])
    return pattern == name


def hook_name(name: str) -> str:
    """The pluggy hook name of an event: ``auth:login:success`` -> ``auth_login_success``."""
    return name.replace(":", "_")


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``name``, for did-you-mean messages."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True)
class EventSpec:
    """One declared event: what the catalogue shows and what the bus validates against."""

    name: str
    doc: str
    function: Callable[..., Any]
    payload_type: Any = None
    declared_by: str = ""
    _adapter: Any = field(default=None, repr=False, compare=False)

    @property
    def hook(self) -> str:
        return hook_name(self.name)

    def with_owner(self, plugin: str) -> EventSpec:
        return replace(self, declared_by=plugin)

    def payload_fields(self) -> list[dict[str, Any]]:
        """The documented payload fields: name, type, required, description."""
        if self.payload_type is None:
            return []
        schema = self._type_adapter().json_schema()
        required = set(schema.get("required", ()))
        fields = []
        for fname, prop in schema.get("properties", {}).items():
            fields.append(
                {
                    "name": fname,
                    "type": _schema_type(prop),
                    "required": fname in required,
                    "description": prop.get("description", ""),
                }
            )
        return fields

    def payload_schema_check(self) -> None:
        """Raise `DeclarationError` now if the payload type cannot serve as a schema."""
        if self.payload_type is None:
            return
        try:
            self._type_adapter()
        except Exception as exc:  # noqa: BLE001 - pydantic raises several kinds here
            raise DeclarationError(
                f"event {self.name!r}: payload type {self.payload_type!r} cannot be used as a "
                f"schema ({exc}); use a TypedDict or a pydantic model"
            ) from None

    def check_payload(self, payload: object) -> None:
        """Raise `InvalidPayloadError` unless ``payload`` may be emitted for this event."""
        if self.payload_type is None and type(payload) is dict:
            # The emit path's common case, settled without a call: str keys, plain values.
            for key, value in payload.items():
                if type(key) is not str or type(value) not in PLAIN_TYPES:
                    break
            else:
                return
        check_json_mapping(self.name, payload)
        if self.payload_type is None:
            return
        from pydantic import ValidationError

        try:
            self._type_adapter().validate_python(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"])
            raise InvalidPayloadError(self.name, first["msg"], field=loc or None) from None

    def _type_adapter(self) -> Any:
        # Built on first use: pydantic is imported only by events that declare a schema.
        if self._adapter is None:
            from pydantic import TypeAdapter

            adapter = TypeAdapter(_pydantic_ready(self.payload_type))
            object.__setattr__(self, "_adapter", adapter)
        return self._adapter


def _pydantic_ready(payload_type: Any) -> Any:
    """Accept ``typing.TypedDict``: pydantic needs ``typing_extensions``' before Python 3.12."""
    if sys.version_info >= (3, 12) or not is_typeddict(payload_type):
        return payload_type
    import typing_extensions as te

    required = payload_type.__required_keys__
    fields = {
        key: (te.Required[hint] if key in required else te.NotRequired[hint])
        for key, hint in get_type_hints(payload_type, include_extras=True).items()
    }
    clone: Any = te.TypedDict(payload_type.__name__, fields)  # type: ignore[misc]  # dynamic name
    clone.__doc__ = payload_type.__doc__
    return clone


def _schema_type(prop: Mapping[str, Any]) -> str:
    if "type" in prop:
        kind = prop["type"]
        if kind == "array" and "items" in prop:
            return f"array[{_schema_type(prop['items'])}]"
        return str(kind)
    if "anyOf" in prop:
        return " | ".join(_schema_type(option) for option in prop["anyOf"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    return "any"


#: Value types a payload needs no closer look for (``check_payload``'s fast path).
PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def check_json_mapping(name: str, payload: object) -> None:
    """Payloads must cross a process boundary, so they are JSON objects."""
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise InvalidPayloadError(
            name, f"expected a mapping (dict) of JSON values, got {type(payload).__name__}"
        )
    for key, value in payload.items():
        if type(key) is not str:
            raise InvalidPayloadError(name, f"keys must be strings, got {key!r}")
        kind = type(value)
        # The common values, checked without serializing them.
        if kind in PLAIN_TYPES or (kind is float and math.isfinite(value)):
            continue
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidPayloadError(
                name,
                f"value of type {type(value).__name__} is not JSON-serializable ({exc}); "
                "send plain str/int/float/bool/None/list/dict values",
                field=key,
            ) from None


def event(name: str) -> Callable[[F], F]:
    """Declare the event ``name``, documented by the decorated function.

    The function's docstring is the event's documentation; the annotation of its
    ``payload`` parameter (a TypedDict or pydantic model), when present, is the
    payload schema the bus validates emitted payloads against.
    """
    validate_event_name(name)

    def mark(function: F) -> F:
        payload_type = _payload_annotation(function)
        doc = inspect.getdoc(function) or ""
        setattr(function, EVENT_MARK, EventSpec(name, doc, function, payload_type))
        return function

    return mark


def _payload_annotation(function: Callable[..., Any]) -> Any:
    if "payload" not in inspect.signature(function).parameters:
        return None
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation just means "no schema"
        return None
    hint = hints.get("payload")
    if hint is None or hint is Any or hint in (dict, Mapping):
        return None
    return hint


def declared_in(namespace: object) -> list[EventSpec]:
    """The event declarations marked with `event` in a module or class."""
    found = []
    for attr in dir(namespace):
        spec = getattr(getattr(namespace, attr, None), EVENT_MARK, None)
        if isinstance(spec, EventSpec):
            found.append(spec)
    return found
