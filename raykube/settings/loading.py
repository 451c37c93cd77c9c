"""Loading: Pulumi's flat config map -> validated Settings, or one SettingsError
that names every bad key (`raykube:rayClusters[0].workerGroups[1].maxReplicas`)
and the stack file."""
from __future__ import annotations

import difflib
import json
import re
from typing import Any, Collection, Mapping, Optional

import pulumi
from pydantic import ValidationError

from raykube.settings.model import PROJECT, SettingsError
from raykube.settings.stack import Settings

_EMBEDDED_KEY = re.compile(r"^__(.+?)__ (.*)$", re.S)


def _key_of(loc: tuple[Any, ...]) -> str:
    key = f"{PROJECT}:"
    first = True
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("" if first else ".") + str(part)
        first = False
    return key


def _split_embedded(loc: tuple[Any, ...], message: str) -> tuple[tuple[Any, ...], str]:
    """Validators that judge several fields name the one at fault as `__sub.key__ msg`."""
    match = _EMBEDDED_KEY.match(message)
    if not match:
        return loc, message
    sub = tuple(int(part) if part.isdigit() else part for part in match.group(1).split("."))
    return loc + sub, match.group(2)


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        # Drop the union/function tags pydantic adds to locations.
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against docs/settings.md)"
        elif item["type"] == "literal_error":
            message = f"{item['input']!r} is not allowed; expected {item['ctx']['expected']}"
        loc, message = _split_embedded(loc, message)
        problems.append((_key_of(loc), message))
    return problems


def parse_settings(raw: Mapping[str, Any], source: str, secret_keys: Collection[str] = ()) -> Settings:
    """Validate `raw` ({key without prefix: value}); SettingsError names key and source.

    `secret_keys`: the keys (without prefix) `pulumi up` handed over as secrets, decrypted: a
    `secure:` value nested in a structured key makes the whole key secret."""
    try:
        return Settings.model_validate(dict(raw), context={"secret_keys": frozenset(secret_keys)})
    except ValidationError as error:
        raise SettingsError(source, _problems(error)) from None


def config_values(config: Mapping[str, str]) -> dict[str, Any]:
    """This project's keys from Pulumi's flat config ({"raykube:key": "json or text"})."""
    values: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, text in config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        # Pulumi hands structured values to the program as JSON text.
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = text
        if not isinstance(value, (dict, list)):
            value = text  # scalars stay the text the user wrote
        values[key] = value
    return values


# The config namespaces this program reads: its own, and the providers' it uses.
# Pulumi hands the program every key of the stack file; a key in any other
# namespace (`raycube:target`) is read by nobody, and the stack would deploy
# its defaults (the local stack) instead of what the user wrote.
KNOWN_NAMESPACES = (PROJECT, "kubernetes", "aws", "pulumi")


def unknown_namespace(key: str) -> Optional[str]:
    """Why a config key (as Pulumi spells it, `namespace:name`) is read by nobody; None if it is read."""
    namespace, colon, name = key.partition(":")
    if not colon:
        return None  # unnamespaced keys are the project's (raykube:)
    if namespace in KNOWN_NAMESPACES and name and ":" not in name:
        return None
    if namespace in KNOWN_NAMESPACES:
        return "is not a config key (namespace:name)"
    near = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}:{name}?" if near else ""
    return f"is in no namespace raykube reads ({', '.join(KNOWN_NAMESPACES)}){hint}"


def stack_file() -> str:
    return f"stacks/Pulumi.{pulumi.get_stack()}.yaml"


def load_settings(source: Optional[str] = None) -> Settings:
    """The settings of the running stack: every `raykube:` key of its config.

    `pulumi.Config("raykube")` reads one known key at a time; strict checking
    needs them all, so this reads the same config map Pulumi fills (the
    language host's set_all_config, or PULUMI_CONFIG).
    """
    from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

    merged = {**get_config_env(), **CONFIG.get()}
    strays = [(key, why) for key in sorted(merged) if (why := unknown_namespace(key))]
    if strays:
        raise SettingsError(source or stack_file(), strays)
    secret = set(get_config_secret_keys_env()) | {key for key in merged if is_config_secret(key)}
    secret_keys = {key.removeprefix(f"{PROJECT}:") for key in secret if key.startswith(f"{PROJECT}:")}
    return parse_settings(config_values(merged), source or stack_file(), secret_keys)
