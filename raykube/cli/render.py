"""`python -m raykube.render`: every resource a stack would create, as files.

Runs the program under Pulumi's mocks (no CLI, no cluster, no cloud account)
and writes one deterministic file per resource for review in pull requests:

  kubernetes/<namespace or cluster>/<kind>-<name>.yaml    Kubernetes objects
  helm/<resource>.yaml       chart, repository, version, namespace, values
  manifests/<resource>.yaml  manifest groups (the KubeRay CRD URLs)
  aws/<type>-<resource>.yaml AWS resources' inputs
  dynamic/<resource>.yaml    raykube's own resources (local file, AWS credentials bridge)
  files/<name>               files `pulumi up` writes (the kubeadm config)
  outputs.yaml               the stack outputs

Secret values are written as "[secret]". Every Kubernetes object must pass
Kubernetes' official schema (strict) for the stack's version before anything
is written. Invalid settings, an object Kubernetes would refuse or an output
folder render may not write print one error and exit 2. The output folder must be
new, empty, or one render wrote before (raykube/render_output.py): only
render's own files are replaced, judged by their names and place, never by a
path read from a file. `--all` renders every stack into renders/<stack>, the
renders committed for review (a test fails when they are stale).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import yaml

from raykube.render_output import RenderOutputError, check_output_folder, write_render
from raykube.schema_check import SchemaError, check_resources
from raykube.stack_file import EXIT_INVALID_SETTINGS, ROOT, StackFile, StackFileError, add_stack_arguments, read_stack_file


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=120)


def _safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return safe if safe.strip(".") else "unnamed"  # never "." or "..": a file name, not a way out of the folder


def _relative_path(resource) -> Optional[str]:
    inputs = resource.inputs
    type_ = resource.type
    if type_.startswith("kubernetes:helm"):
        return f"helm/{_safe(resource.name)}.yaml"
    if type_.startswith("kubernetes:yaml") or type_.startswith("kubernetes:kustomize"):
        return f"manifests/{_safe(resource.name)}.yaml"
    if type_.startswith("kubernetes:") and "kind" in inputs:
        metadata = inputs.get("metadata") or {}
        folder = metadata.get("namespace") or "cluster"
        name = metadata.get("name") or resource.name
        return f"kubernetes/{_safe(folder)}/{inputs['kind'].lower()}-{_safe(name)}.yaml"
    if type_.startswith("pulumi-python:dynamic"):
        return f"dynamic/{_safe(resource.name)}.yaml"
    if type_.startswith("aws:"):
        short = type_.split(":")[-1]
        return f"aws/{_safe(short.lower())}-{_safe(resource.name)}.yaml"
    return None


def _content(resource) -> dict[str, Any]:
    from raykube.offline import SECRET

    inputs = dict(resource.inputs)
    if resource.type.startswith("kubernetes:helm"):
        content = {
            "chart": inputs.get("chart"),
            "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
            "version": inputs.get("version"),
            "release": inputs.get("name"),
            "namespace": inputs.get("namespace"),
            "skipCrds": inputs.get("skipCrds", False),
            "values": inputs.get("values") or {},
        }
        # A mirror's CA, client certificate and credentials (sources.charts): only when set; secrets as "[secret]".
        access = {key: value for key, value in (inputs.get("repositoryOpts") or {}).items() if key != "repo"}
        if access:
            content["repositoryAccess"] = access
        if inputs.get("plainHttp"):
            content["plainHttp"] = True
        return content
    if resource.type.startswith("pulumi-python:dynamic"):
        inputs.pop("__provider", None)  # the pickled provider code, not a setting
    if inputs.get("kind") == "Secret":
        # pulumi-kubernetes makes the whole map secret; keep its keys, so the
        # render is a valid Secret and reviewers see what it holds.
        for field in ("data", "stringData"):
            if field in inputs:
                inputs[field] = {key: SECRET for key in resource.revealed_inputs.get(field) or {}}
    return inputs


def render(stack_file: StackFile, out: Path) -> int:
    from raykube.composition import build
    from raykube.offline import run_offline
    from raykube.settings import SettingsError

    try:
        settings = stack_file.settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    config, stack, source = stack_file.config, stack_file.stack, stack_file.source
    try:
        check_output_folder(out, ROOT)  # before the work: a refused folder costs nothing
    except RenderOutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    run = run_offline(lambda: build(settings).as_tuple(), config, stack)
    files: dict[str, str] = {}
    written: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for resource in run.resources:
        counts[resource.type] += 1
        relative = _relative_path(resource)
        if relative is None:
            continue
        files[relative] = _dump(_content(resource))
        written[relative.split("/")[0]] += 1
    for name, text in sorted(run.files.items()):
        files[f"files/{_safe(os.path.basename(name))}"] = text
        written["files"] += 1
    files["outputs.yaml"] = _dump(run.outputs)
    try:
        # What the API server would refuse stops the render before anything is written.
        check_resources(run.resources, settings.kubernetes_version, _relative_path)
        write_render(out, files, ROOT)
    except (SchemaError, RenderOutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS

    print(f"stack {stack} ({source}): {sum(counts.values())} resources")
    width = max(len(type_) for type_ in counts) if counts else 10
    for type_, count in sorted(counts.items()):
        print(f"  {type_:<{width}}  {count}")
    print(f"wrote to {out}: " + ", ".join(f"{folder}/ {count}" for folder, count in sorted(written.items())) + ", outputs.yaml")
    for warning in run.warnings:  # what `pulumi preview` / `up` would print as warnings
        print(f"warning: {warning}", file=sys.stderr)
    return 0


EPILOG = (
    "Exit status: 0 rendered; 2 an unusable stack file or settings, an object Kubernetes' official schema refuses, "
    "or an output folder render may not write (the error says which and why; nothing is written or deleted)."
)

# The renders committed for review, one folder per stack (`raykube render --all`).
RENDERS = ROOT / "renders"


def stack_names() -> list[str]:
    return sorted(path.stem.removeprefix("Pulumi.") for path in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="raykube render", description=__doc__.split("\n\n")[0], epilog=EPILOG)
    add_stack_arguments(parser)  # --stack defaults to local below, so --all can tell it was not given
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder: new, empty, or one raykube render wrote (only its own files are replaced; default ./render)")
    parser.add_argument("--all", action="store_true",
                        help="every stack in stacks/ into renders/<stack>: the renders committed for review")
    args = parser.parse_args(argv)
    if args.all:
        given = [flag for flag, value in (("--stack", args.stack), ("--config", args.config), ("--out", args.out)) if value]
        if given:
            print(f"error: --all renders every stack into renders/<stack>; it takes no {', '.join(given)}", file=sys.stderr)
            return EXIT_INVALID_SETTINGS
        stacks = stack_names()
        for index, stack in enumerate(stacks, 1):
            print(f"[{index}/{len(stacks)}] rendering {stack} ...", flush=True)
            code = render(read_stack_file(stack, None), RENDERS / stack)
            if code:
                return code
        return 0
    try:
        stack_file = read_stack_file(args.stack or (None if args.config else "local"), args.config)
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    # Absolute, symlinks kept: render_output refuses an --out that is a symlink.
    return render(stack_file, Path(os.path.abspath(args.out or "render")))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the mocks' event loop complains while closing.
    os._exit(code)
