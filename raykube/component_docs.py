"""`python -m raykube.component_docs [--check]`: docs/components.md's reference, from the schema.

The schema is what `pulumi package add <repo>/components` gives every Pulumi
language: Pulumi's own analyzer infers it from the components' typed Args
and documented outputs. This writes it into docs/components.md between the
markers; --check exits 1 when that file is stale.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "components.md"
GENERATOR = "python -m raykube.component_docs"
START, END = "<!-- components:start -->", "<!-- components:end -->"
PACKAGE = "raykube"


def package_schema() -> dict[str, Any]:
    """The Pulumi package schema of every public component (as `pulumi package get-schema` shows it)."""
    from pulumi.provider.experimental.analyzer import Analyzer
    from pulumi.provider.experimental.schema import generate_schema

    from components.catalog import public_components

    result = Analyzer(PACKAGE).analyze(public_components())
    spec = generate_schema(PACKAGE, "0.1.0", None, result["component_definitions"], result["type_definitions"], list(result["dependencies"]))
    return json.loads(json.dumps(spec.to_json()))


def _type_name(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "any (JSON)" if prop["$ref"] == "pulumi.json#/Any" else prop["$ref"].rsplit(":", 1)[-1]
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_name(prop.get('items', {}))}"
    if kind == "object":
        return f"map of {_type_name(prop['additionalProperties'])}" if "additionalProperties" in prop else "object"
    return kind


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def reference(schema: dict[str, Any]) -> str:
    lines = [START, "", f"Generated from the package schema by `{GENERATOR}`; do not edit by hand.", ""]
    for token, resource in sorted(schema["resources"].items()):
        name = token.rsplit(":", 1)[-1]
        required = set(resource.get("requiredInputs", []))
        lines += [f"### {name}", "", _cell(resource.get("description", "")), "", "| input | type | description |", "|---|---|---|"]
        for prop, spec in sorted(resource.get("inputProperties", {}).items()):
            lines.append(f"| `{prop}`{' (required)' if prop in required else ''} | {_type_name(spec)} | {_cell(spec.get('description', ''))} |")
        lines += ["", "| output | type | description |", "|---|---|---|"]
        for prop, spec in sorted(resource.get("properties", {}).items()):
            lines.append(f"| `{prop}` | {_type_name(spec)} | {_cell(spec.get('description', ''))} |")
        lines.append("")
    types = schema.get("types", {})
    if types:
        lines += ["### Types", ""]
        for token, spec in sorted(types.items()):
            fields = ", ".join(f"`{prop}`" for prop in sorted(spec.get("properties", {})))
            lines.append(f"- `{token.rsplit(':', 1)[-1]}`: {_cell(spec.get('description', ''))} Fields: {fields}.")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def replace_between_markers(path: Path, start: str, end: str, block: str, generator: str, what: str, check: bool) -> int:
    """Write `block` (markers included) over the text between `start` and `end` in `path`; 1 if --check finds it stale."""
    name = path.relative_to(ROOT)
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        print(f"{name} has no {start} ... {end} markers", file=sys.stderr)
        return 1
    before, rest = text.split(start, 1)
    new = before + block + rest.split(end, 1)[1]
    if check:
        if new != text:
            print(f"{name}'s {what} is stale: run `venv/bin/{generator}`", file=sys.stderr)
            return 1
        return 0
    if new == text:
        print(f"{name}: {what} already up to date")
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"{name}: {what} updated")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/components.md is stale, change nothing")
    args = parser.parse_args(argv)
    return replace_between_markers(DOC, START, END, reference(package_schema()), GENERATOR, "component reference", check=args.check)


if __name__ == "__main__":
    sys.exit(main())
