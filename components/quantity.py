"""Kubernetes resource quantities ("500m", "2Gi", "1e3") as numbers.

Ray needs plain numbers (`--num-cpus 2`, `--memory 2147483648`) where
Kubernetes takes quantities; both the settings checks and the components
convert with these two functions so they can never disagree.
"""

import math
import re
from decimal import Decimal, InvalidOperation

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
