"""Checking a component's arguments against its typed Args, before anything is registered.

A TypedDict documents the fields but Python does not enforce it: a consumer's
misspelled `max_replica` would otherwise be dropped silently and the default
used. Every component calls `check_args` first, so a wrong key is one
ComponentArgsError naming the component and the field, and nothing is created.
Values that are still Outputs are checked once known, by the builders.
"""
from __future__ import annotations

import difflib
import typing
from typing import Any, Mapping, Optional, Union

import pulumi


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


def _unknown(component: str, where: str, key: str, known: list[str]) -> ComponentArgsError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; the fields are {', '.join(sorted(known))}"
    return ComponentArgsError(component, f"{where}{key}", f"unknown field{hint}")


def check_args(component: str, args_type: type, args: Any, where: str = "") -> None:
    """Raise ComponentArgsError for a key `args_type` does not declare, or a required one missing,
    at any depth of plain values. `component` names the instance, e.g. "RayCluster 'ray'"."""
    if isinstance(args, pulumi.Output) or args is None:
        return
    if not isinstance(args, Mapping):
        raise ComponentArgsError(component, where.rstrip(".") or "args", f"must be a mapping of {args_type.__name__} fields, not {type(args).__name__}")
    # The raw annotations: pulumi.Input's forward reference to Output need not resolve.
    hints = dict(args_type.__annotations__)
    for key in args:  # first: a misspelled required field is a typo, not a missing field
        if key not in hints:
            raise _unknown(component, where, str(key), list(hints))
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
