"""Deep merge for escape hatches: a user's raw values win over typed ones."""

from typing import Any, Mapping


def _copy(value: Any) -> Any:
    """A copy of the maps and lists; the leaves are shared. A leaf may be a pulumi Output (a role ARN
    created in the same `pulumi up`), which cannot be deep-copied and need not be: it is immutable."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: maps merge key by key, anything else is replaced."""
    merged = _copy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged
