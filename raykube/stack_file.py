"""A stack file as raykube's commands read it, without the Pulumi CLI.

`--stack NAME` reads stacks/Pulumi.<NAME>.yaml, `--config FILE` any stack
file; the config map is the one `pulumi up` would hand the program (project
defaults from Pulumi.yaml, then the stack's values), and the settings are
validated exactly as the program validates them.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from raykube.redaction import SECRET

ROOT = Path(__file__).resolve().parent.parent
# Exit status of every command for a stack file or settings it cannot use.
EXIT_INVALID_SETTINGS = 2


class StackFileError(Exception):
    """A stack file that is missing or is not a stack file."""


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def stack_config_values(stack_file_config: Mapping[str, Any], project_config: Optional[Mapping[str, Any]] = None, project: str = "raykube") -> dict[str, str]:
    """Pulumi's flat config map, as the CLI would hand it to the program.

    Project-level defaults from Pulumi.yaml first, then the stack file's
    values; keys without a namespace belong to the project; structured values
    travel as JSON, scalars as their text; `secure:` values cannot be
    decrypted offline and stand as SECRET.
    """
    flat: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[full] = SECRET
        elif isinstance(value, (dict, list)):
            flat[full] = json.dumps(value)
        elif isinstance(value, bool):
            flat[full] = "true" if value else "false"
        elif value is None:
            flat[full] = ""
        else:
            flat[full] = str(value)

    for key, declaration in (project_config or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            put(key, declaration["default"])
        elif not isinstance(declaration, dict):
            put(key, declaration)
    for key, value in (stack_file_config or {}).items():
        put(key, value)
    return flat


def flat_config(config_file: Optional[Path]) -> dict[str, str]:
    """The config map `pulumi up` would give the program for this stack file."""
    project = load_yaml(ROOT / "Pulumi.yaml")
    stack_config = load_yaml(config_file).get("config", {}) if config_file else {}
    return stack_config_values(stack_config, project.get("config", {}), project["name"])


@dataclass(frozen=True)
class StackFile:
    path: Path
    stack: str
    config: dict[str, str]

    @property
    def source(self) -> str:
        """The path as error messages name it: relative to the project where it lies inside."""
        return str(self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path)

    def settings(self):
        """The validated settings; raises raykube.settings.SettingsError naming key and file."""
        from raykube.settings import config_values, parse_settings

        return parse_settings(config_values(self.config), self.source)


def add_stack_arguments(parser: argparse.ArgumentParser, default: Optional[str] = None) -> None:
    parser.add_argument("--stack", default=default,
                        help="stack name: reads stacks/Pulumi.<stack>.yaml" + (f" (default {default})" if default else ""))
    parser.add_argument("--config", type=Path, help="any stack file instead of stacks/Pulumi.<stack>.yaml")


def read_stack_file(stack: Optional[str], config: Optional[Path]) -> StackFile:
    if not stack and not config:
        raise StackFileError("name the stack: --stack NAME (reads stacks/Pulumi.<NAME>.yaml) or --config FILE")
    path = config.resolve() if config else ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise StackFileError(f"no stack file {path}")
    try:
        text = load_yaml(path)
    except yaml.YAMLError as error:
        raise StackFileError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(text, dict):
        raise StackFileError(f"{path} must be a mapping with a `config:` section")
    name = path.stem.removeprefix("Pulumi.") if config else stack
    return StackFile(path=path, stack=name, config=flat_config(path))
