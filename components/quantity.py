"""Kubernetes resource quantities ("500m", "2Gi", "1e3") as numbers.

Ray needs plain numbers (`--num-cpus 2`, `--memory 2147483648`) where
Kubernetes takes quantities; both the settings checks and the components
convert with these two functions so they can never disagree.
"""

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Optional

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]{0,2})$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units; ValueError if it is no quantity."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(3) not in _SUFFIXES or (match.group(2) and match.group(3)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 4Gi)")
    number, exponent, suffix = match.groups()
    try:
        result = Decimal(number) * _SUFFIXES[suffix]
    except InvalidOperation as error:  # pragma: no cover - regex already guards
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from error
    if exponent:
        result *= Decimal(10) ** int(exponent)
    return result


def whole_cpus(value: str | int | float) -> int:
    """CPUs Ray may schedule on: milli-CPUs rounded down ("2500m" -> 2)."""
    return math.floor(parse_quantity(value))


def whole_bytes(value: str | int | float) -> int:
    """Bytes, rounded down ("1.5Gi" -> 1610612736)."""
    return math.floor(parse_quantity(value))


# What a container may request without a domain (Kubernetes' standard container
# resources); anything else needs one (nvidia.com/gpu). Byte counts need a unit:
# `memory: 2` is two bytes, which Kubernetes takes and no pod runs in.
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_BYTE_RESOURCES = ("memory", "ephemeral-storage")
_QUALIFIED_RESOURCE = re.compile(
    r"^(?:(?P<prefix>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)$"
)
_BINARY_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def bytes_problem(what: str, value: Any) -> Optional[str]:
    """A size in bytes must say its unit: a plain number is bytes, never what was meant."""
    try:
        parse_quantity(value)
    except ValueError as error:
        return f"{what}: {error}"
    text = str(value).strip()
    if isinstance(value, (int, float)) or re.fullmatch(r"[+]?[0-9.]+", text):
        return f"{what} {text} is {text} bytes: give a unit, e.g. {text}Gi or {text}Mi"
    return None


def quantity_problem(resource: str, value: Any) -> Optional[str]:
    """Why Kubernetes would refuse (or misread) `value` as a container's `resource`; None when it is fine."""
    match = _QUALIFIED_RESOURCE.match(str(resource))
    standard = resource in STANDARD_RESOURCES or str(resource).startswith("hugepages-")
    if not match or (not match.group("prefix") and not standard) or len(match.group("name")) > 63 or len(match.group("prefix") or "") > 253:
        return f"{resource!r} is not a container resource: cpu, memory, ephemeral-storage, hugepages-<size>, or a name with a domain such as nvidia.com/gpu"
    try:
        amount = parse_quantity(value)
    except ValueError as error:
        return f"{resource}: {error}"
    text = str(value).strip()
    if resource in _BYTE_RESOURCES or resource.startswith("hugepages-"):
        return bytes_problem(resource, value)
    elif resource == "cpu":
        if text.endswith(_BINARY_SUFFIXES):
            return f"cpu {text}: CPUs are counted in cores or millicores (2, 500m), not in {text[-2:]}"
    elif amount != amount.to_integral_value():
        # Extended resources (GPUs) are whole devices: the API server refuses fractions.
        return f"{resource} {text} must be a whole number"
    return None


def resources_problem(resources: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    """(where, why) Kubernetes would refuse a container's {requests, limits}, or None."""
    if not isinstance(resources, Mapping):
        return "", f"must be a mapping of requests and limits, not {type(resources).__name__}"
    for part in ("requests", "limits"):
        values = resources.get(part) or {}
        if not isinstance(values, Mapping):
            return part, f"must be a mapping of resource names to quantities, not {type(values).__name__}"
        for resource, value in values.items():
            problem = quantity_problem(resource, value)
            if problem:
                return f"{part}.{resource}", problem
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for resource, request in requests.items():
        extended = "/" in str(resource)
        if resource in limits and parse_quantity(limits[resource]) < parse_quantity(request):
            return f"limits.{resource}", f"limit {limits[resource]} for {resource} is below its request {request}"
        if extended and (resource not in limits or parse_quantity(limits[resource]) != parse_quantity(request)):
            # Kubernetes never overcommits extended resources: a request needs an equal limit.
            return f"limits.{resource}", f"{resource} needs a limit equal to its request {request} (extended resources are not overcommitted)"
    return None
