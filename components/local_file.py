"""LocalFile: a file on the machine that runs `pulumi up`, owned by the stack.

A dynamic resource, so the file is written on `pulumi up` (never on preview),
rewritten when its content changes and removed by `pulumi destroy`.
"""

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


def _write(path: str, content: str) -> dict[str, Any]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return {"path": path, "content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}


class LocalFileProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=os.path.abspath(props["path"]), outs=_write(props["path"], props["content"]))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("content") != news.get("content") or olds.get("path") != news.get("path")
        return DiffResult(changes=changed, replaces=["path"] if olds.get("path") != news.get("path") else [])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_write(news["path"], news["content"]))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        Path(props["path"]).unlink(missing_ok=True)


class LocalFile(pulumi.dynamic.Resource):
    """A file with the given content at `path` (relative to the project directory)."""

    path: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(self, name: str, path: pulumi.Input[str], content: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(LocalFileProvider(), name, {"path": path, "content": content, "sha256": None}, opts)
