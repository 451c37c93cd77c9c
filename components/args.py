"""Checking a component's arguments against its typed Args, before anything is registered.

A TypedDict documents the fields but Python does not enforce it: a consumer's
misspelled `max_replica` would otherwise be dropped silently and the default
used. Every component calls `check_args` first, so a wrong key is one
ComponentArgsError naming the component and the field, and nothing is created.
Values that are still Outputs are checked once known, by the builders.
"""
from __future__ import annotations

import collections.abc
import difflib
import typing
from typing import Any, Mapping, Optional, Union

import pulumi

# Every whole number a component takes ends up in an int32 field of the API
# (replicas, seconds, percentages, ports), none of which takes a negative value.
INT32_MAX = 2**31 - 1
# Fields whose API range is narrower, by name (the same name means the same
# thing in every component): Kubernetes' own limits for HPA behaviour
# (periodSeconds 1..1800, stabilizationWindowSeconds <= 3600, a policy value and
# an HPA's replicas >= 1 where it scales), ports, and metrics-server's.
RANGES: dict[str, tuple[int, int]] = {
    "api_server_ports": (1, 65535),
    "period_seconds": (1, 1800),
    "stabilization_window_seconds": (0, 3600),
    "scale_down_stabilization_seconds": (0, 3600),
    "pods": (1, INT32_MAX),
    "percent": (1, INT32_MAX),
    "target_cpu_utilization_percent": (1, INT32_MAX),
    "ready_timeout_seconds": (1, INT32_MAX),
    "scrape_interval_seconds": (1, INT32_MAX),
    "resolution_seconds": (1, INT32_MAX),
    "sync_period_seconds": (1, INT32_MAX),
    "duration_seconds": (900, 43200),
    "max_session_duration_seconds": (3600, 43200),
    "token_expiration_seconds": (600, INT32_MAX),
}


class ComponentArgsError(pulumi.RunError):
    """Bad arguments to a raykube component. A RunError: Pulumi prints it without a traceback."""

    def __init__(self, component: str, field: str, message: str):
        self.component = component
        self.field = field
        super().__init__(f"{component}: {field}: {message}")


def _typed_dict(tp: Any) -> tuple[Optional[type], bool]:
    """(the TypedDict inside `tp`, whether it is a list of them) through Input[], Optional[] and Sequence[]."""
    if typing.is_typeddict(tp):
        return tp, False
    origin = typing.get_origin(tp)
    arguments = typing.get_args(tp)
    if origin in (typing.Required, typing.NotRequired):
        return _typed_dict(arguments[0])
    if origin is Union:
        for argument in arguments:
            found, many = _typed_dict(argument)
            if found is not None:
                return found, many
        return None, False
    if origin is not None and arguments and origin not in (dict, Mapping) and getattr(origin, "__name__", "") in ("Sequence", "list", "tuple"):
        found, _ = _typed_dict(arguments[0])
        return found, found is not None
    return None, False


def _plain_types(tp: Any) -> list[Any]:
    """The types a plain (not yet an Output) value of `tp` may have: Input[], Required[] and Optional[] unwrapped."""
    origin, arguments = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Required, typing.NotRequired):
        return _plain_types(arguments[0])
    if origin is Union:
        found = []
        for argument in arguments:
            if argument is type(None) or isinstance(argument, typing.ForwardRef) or typing.get_origin(argument) is collections.abc.Awaitable:
                continue
            found += _plain_types(argument)
        return found
    return [tp]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if typing.is_typeddict(tp) or tp in (dict, Mapping) or origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if origin in (list, tuple, collections.abc.Sequence):
        return "a list"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _whole(value: Any) -> bool:
    """An int, or a float with no fraction: every consumer but Python's (YAML, TypeScript, Go, C#)
    sends its numbers to the component package as floats, so a YAML `minReplicas: 0` arrives as 0.0."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _fits(value: Any, tp: Any) -> bool:
    """Whether a plain value has the type `tp` (containers by their shape, their items by _check_value)."""
    if tp is Any or isinstance(value, (pulumi.Output, collections.abc.Awaitable)):
        return True
    origin = typing.get_origin(tp)
    if typing.is_typeddict(tp) or tp in (dict, Mapping) or origin in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    if origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _whole(value)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _check_value(component: str, field: str, name: str, tp: Any, value: Any) -> Any:
    """ComponentArgsError unless `value` has one of `tp`'s plain types, items included, and an int is in its range.
    Returns the value with every whole-number float an int field holds made an int (in place in lists),
    so the builders, the renders and the API see 3, never 3.0."""
    if value is None or isinstance(value, (pulumi.Output, collections.abc.Awaitable)):
        return value  # None: the default; Outputs: checked once known, by the builders
    types = _plain_types(tp)
    matching = [candidate for candidate in types if _fits(value, candidate)]
    if not matching:
        expected = " or ".join(dict.fromkeys(_describe(candidate) for candidate in types))
        raise ComponentArgsError(component, field, f"must be {expected}, not {type(value).__name__} {value!r}")
    chosen = matching[0]
    if chosen is int:
        value = int(value)
        low, high = RANGES.get(name, (0, INT32_MAX))
        if not low <= value <= high:
            raise ComponentArgsError(component, field, f"must be between {low} and {high}, got {value}")
    origin, arguments = typing.get_origin(chosen), typing.get_args(chosen)
    if origin in (list, tuple, collections.abc.Sequence) and arguments and not typing.is_typeddict(arguments[0]):
        for index, item in enumerate(value):
            checked = _check_value(component, f"{field}[{index}]", name, arguments[0], item)
            if checked is not item and isinstance(value, collections.abc.MutableSequence):
                value[index] = checked
    elif origin in (dict, collections.abc.Mapping) and len(arguments) == 2:
        for key, item in value.items():
            _check_value(component, f"{field}.{key}", name, arguments[0], key)
            checked = _check_value(component, f"{field}.{key}", name, arguments[1], item)
            if checked is not item and isinstance(value, collections.abc.MutableMapping):
                value[key] = checked
    return value


def _unknown(component: str, where: str, key: str, known: list[str]) -> ComponentArgsError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; the fields are {', '.join(sorted(known))}"
    return ComponentArgsError(component, f"{where}{key}", f"unknown field{hint}")


def check_args(component: str, args_type: type, args: Any, where: str = "") -> None:
    """Raise ComponentArgsError for a key `args_type` does not declare, a value of another type
    or out of its range, or a required key missing, at any depth of plain values. `component`
    names the instance, e.g. "RayCluster 'ray'". A whole-number float given for an int field
    (how every non-Python consumer sends numbers) is accepted and made an int in `args` itself
    (its dicts and lists), before the builders read it; 1.5 is refused."""
    if isinstance(args, pulumi.Output) or args is None:
        return
    if not isinstance(args, Mapping):
        raise ComponentArgsError(component, where.rstrip(".") or "args", f"must be a mapping of {args_type.__name__} fields, not {type(args).__name__}")
    # The raw annotations: pulumi.Input's forward reference to Output need not resolve.
    hints = dict(args_type.__annotations__)
    for key in args:  # first: a misspelled required field is a typo, not a missing field
        if key not in hints:
            raise _unknown(component, where, str(key), list(hints))
    for key, value in list(args.items()):  # then what was given: a wrong type is never passed on to the API
        checked = _check_value(component, f"{where}{key}", str(key), hints[key], value)
        if checked is not value and isinstance(args, collections.abc.MutableMapping):
            args[key] = checked  # 3.0 from a YAML consumer becomes the 3 the builders expect
    for key in sorted(getattr(args_type, "__required_keys__", frozenset()) - set(args)):
        raise ComponentArgsError(component, f"{where}{key}", "required field missing")
    for key, value in args.items():
        nested, many = _typed_dict(hints[key])
        if nested is None or isinstance(value, pulumi.Output) or value is None:
            continue
        if many:
            if isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    check_args(component, nested, item, f"{where}{key}[{index}].")
        else:
            check_args(component, nested, value, f"{where}{key}.")


def component_label(kind: str, name: str) -> str:
    return f"{kind} {name!r}"
