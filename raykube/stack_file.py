"""A stack file as raykube's commands read it, without the Pulumi CLI.

`--stack NAME` reads stacks/Pulumi.<NAME>.yaml, `--config FILE` any stack
file; the config map is the one `pulumi up` would hand the program (project
defaults from Pulumi.yaml, then the stack's values), and the settings are
validated exactly as the program validates them.

A file that is not plainly a stack file is refused with one line naming it:
an empty file, no `config:` mapping, settings at the top level instead of
under `config:`, a key in no namespace raykube reads (`raycube:target`), or a
key written twice at any level. Each of these would otherwise deploy the
defaults (the local stack) or silently take the last of two values.
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


# The top-level keys of a Pulumi stack file (Pulumi's project-stack schema).
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")


class DuplicateKeyError(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, first: int, second: int):
        self.key, self.lines = key, (first, second)
        super().__init__(None, None, f"the key {key!r} is written twice (lines {first} and {second}); keep one")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping (at any level):
    plain PyYAML keeps the last value, so `raykube:target` twice deploys whichever came last."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults` then overriding a default is YAML's own way, not a repeat
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: SafeLoader refuses it below
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first.line + 1, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=UniqueKeyLoader) or {}


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error on one line: what, and where (PyYAML's own text spans several lines)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def stack_file_config(path: Path, source: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file, or StackFileError (one line naming `source`) for anything else."""
    try:
        if path.is_dir():
            raise StackFileError(f"{source} is a folder, not a stack file (e.g. stacks/Pulumi.<stack>.yaml)")
        if not path.is_file():
            raise StackFileError(f"{source} is not a regular file; a stack file is a YAML file (e.g. stacks/Pulumi.<stack>.yaml)")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{source} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise StackFileError(f"cannot read {source}: {error.strerror or error}") from None
    try:
        document = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKeyError as error:
        raise StackFileError(f"{source} writes the key {error.key!r} twice (lines {error.lines[0]} and {error.lines[1]}): YAML would keep only the last; keep one") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{source} is not valid YAML: {_yaml_problem(error)}") from None
    if document is None:
        raise StackFileError(f"{source} is empty; a stack file has a `config:` mapping of settings, e.g. `config: {{raykube:target: eks}}`")
    if not isinstance(document, dict):
        raise StackFileError(f"{source} must be a mapping with a `config:` section, not {_kind(document)}")
    strays = [key for key in document if key not in STACK_FILE_KEYS]
    if strays:
        stray = strays[0]
        where = "settings go under `config:`" if isinstance(stray, str) and ":" in stray else f"a stack file has only {', '.join(STACK_FILE_KEYS)}"
        raise StackFileError(f"{source}: {stray!r} is not a stack file key at the top level; {where}")
    if "config" not in document:
        raise StackFileError(f"{source} has no `config:` mapping; a stack file's settings go under `config:`")
    config = document["config"]
    if not isinstance(config, dict):
        raise StackFileError(f"{source}: `config:` must be a mapping of settings (e.g. `raykube:target: eks`), not {_kind(config)}")
    from raykube.settings.loading import unknown_namespace

    for key in config:
        if not isinstance(key, str):
            raise StackFileError(f"{source}: the config key {key!r} is not a name; keys are `raykube:<setting>` or a provider's `kubernetes:<key>`")
        why = unknown_namespace(key)
        if why:
            raise StackFileError(f"{source}: the config key {key!r} {why}")
    return config


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "empty", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


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


def flat_config(config_file: Optional[Path], stack_config: Optional[Mapping[str, Any]] = None) -> dict[str, str]:
    """The config map `pulumi up` would give the program for this stack file (or its checked `config:`)."""
    project = load_yaml(ROOT / "Pulumi.yaml")
    if stack_config is None:
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
    if stack and config and Path(config).name != f"Pulumi.{stack}.yaml":
        # The stack's name goes into resource names; which one is meant cannot be guessed.
        raise StackFileError(f"--stack {stack} and --config {config} name different stacks; give one of them")
    try:
        path = config.resolve() if config else ROOT / "stacks" / f"Pulumi.{stack}.yaml"
        missing = not path.exists()
    except (OSError, ValueError) as error:  # too long a name, a NUL byte
        raise StackFileError(f"cannot read the stack file {str(config or stack)[:160]}: {getattr(error, 'strerror', None) or error}") from None
    if missing:
        raise StackFileError(f"no stack file {path}")
    source = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    stack_config = stack_file_config(path, source)
    name = path.stem.removeprefix("Pulumi.") if config else stack
    return StackFile(path=path, stack=name, config=flat_config(path, stack_config))
