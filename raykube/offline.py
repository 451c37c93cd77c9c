"""Run the program under Pulumi's own mocks: no CLI, no cluster, no cloud.

Records every resource registration the way the engine receives it (type,
name, inputs, parent, dependencies, which inputs are secret) and resolves the
stack outputs. `raykube.render` writes this for reviewers; the tests assert
on it.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import pulumi
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from raykube.redaction import SECRET  # noqa: E402  (re-exported: render and tests read it here)
UNKNOWN = "[unknown until apply]"
MOCK_ACCOUNT = "000000000000"


def _plain_numbers(value: Any) -> Any:
    """Pulumi's wire format has only doubles; give integral ones back as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _unwrap(value: Any, path: str, secrets: list[str], reveal: bool = False) -> Any:
    """Wire value -> plain value; secrets become SECRET (or their value, if
    `reveal`) and their paths are noted."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            secrets.append(path or ".")
            return _unwrap(value.get("value"), path, [], reveal) if reveal else SECRET
        if sig == rpc._special_resource_sig:
            return {"resourceRef": value.get("urn")}
        if sig in (rpc._special_asset_sig, rpc._special_archive_sig):
            return {key: item for key, item in value.items() if key != rpc._special_sig_key}
        return {key: _unwrap(item, f"{path}.{key}" if path else key, secrets, reveal) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item, f"{path}[{index}]", secrets, reveal) for index, item in enumerate(value)]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    return value


@dataclass
class Registered:
    """One resource as the engine would receive it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    inputs: dict[str, Any]  # secret inputs appear as SECRET
    secret_paths: list[str] = field(default_factory=list)
    provider: str = ""
    retain_on_delete: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    transforms: int = 0  # resource transforms registered with the engine (they reach remote components' children)
    # The same with secret values in place: for schema checks in tests, never written out.
    revealed_inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_kubernetes_object(self) -> bool:
        """One Kubernetes object (custom resources included), not a chart or manifest group."""
        return (
            self.custom and self.type.startswith("kubernetes:") and "kind" in self.inputs
            and not self.type.startswith(("kubernetes:helm", "kubernetes:yaml"))
        )


class RecordingMonitor(MockMonitor):
    """MockMonitor that also keeps what each RegisterResource request carried."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            secrets: list[str] = []
            wire = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            inputs = _plain_numbers(_unwrap(wire, "", secrets))
            self.registered.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    inputs=inputs,
                    secret_paths=secrets,
                    provider=request.provider,
                    retain_on_delete=bool(request.retainOnDelete),
                    transforms=len(request.transforms),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    revealed_inputs=_plain_numbers(_unwrap(wire, "", [], reveal=True)),
                )
            )
        return response


class OfflineMocks(pulumi.runtime.Mocks):
    """Plausible provider answers, so outputs derived from them resolve."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        name = args.name
        if args.typ == "aws:iam/role:Role":
            role_name = state.get("name") or name
            state.setdefault("name", role_name)
            state["arn"] = f"arn:aws:iam::{MOCK_ACCOUNT}:role/{role_name}"
        elif args.typ.startswith("aws:s3/bucket"):
            bucket = state.get("bucket") or name
            state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/{state['url'].removeprefix('https://')}"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "mock-password"  # a stand-in; pulumi-random marks the real one secret
        elif args.typ == "pulumi-python:dynamic:Resource":
            # The AWS credentials bridge: stand-in values, never real ones.
            state.update(
                access_key_id="MOCKACCESSKEYID",
                secret_access_key="mock-secret-access-key",
                session_token="mock-session-token",
                expiration="2099-01-01T00:00:00+00:00",
            )
        return f"{name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_ACCOUNT, "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/offline", "userId": "OFFLINE"}
        return {}


@dataclass
class OfflineRun:
    resources: list[Registered]
    outputs: dict[str, Any]  # secret outputs appear as SECRET
    secret_outputs: list[str]
    files: dict[str, str]
    warnings: list[str] = field(default_factory=list)  # what `pulumi up` would print as warnings

    def of_type(self, type_: str) -> list[Registered]:
        return [resource for resource in self.resources if resource.type == type_]

    def by_urn(self, urn: str) -> Registered:
        return next(resource for resource in self.resources if resource.urn == urn)

    def kubernetes_objects(self) -> list[Registered]:
        """Every Kubernetes object with apiVersion/kind (custom resources included)."""
        return [resource for resource in self.resources if resource.is_kubernetes_object]


async def _resolve(value: Any, path: str, secrets: list[str]) -> Any:
    if isinstance(value, pulumi.Output):
        plain = await value.future(with_unknowns=True)
        if await value.is_secret():
            secrets.append(path)
            return SECRET
        return await _resolve(plain, path, secrets)
    if isinstance(value, dict):
        return {key: await _resolve(item, f"{path}.{key}" if path else key, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(item, f"{path}[{index}]", secrets) for index, item in enumerate(value)]
    if isinstance(value, Unknown):
        return UNKNOWN
    return value


def run_offline(
    program: Callable[[], Any],
    config: Mapping[str, str],
    stack: str,
    project: str = "raykube",
    monitor: Optional[RecordingMonitor] = None,
    secret_keys: Optional[list[str]] = None,
) -> OfflineRun:
    """Run `program` (returns (outputs, files)) under mocks with `config`; `secret_keys`: the config keys
    `pulumi up` would hand over as decrypted secrets (default none)."""
    monitor = monitor or RecordingMonitor(OfflineMocks())
    mocks = monitor.mocks
    warnings: list[str] = []
    logger = logging.getLogger(f"raykube.offline.{stack}")
    logger.propagate = False
    logger.handlers = [_Collect(warnings)]
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys or []))
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def run():
        outputs, files = program()
        secret_outputs: list[str] = []

        async def resolve_all():
            captured["outputs"] = await _resolve(outputs, "", secret_outputs)
            captured["secret_outputs"] = secret_outputs
            file_secrets: list[str] = []
            captured["files"] = await _resolve(files, "", file_secrets)
            if file_secrets:
                raise RuntimeError(f"rendered files would contain secrets: {file_secrets}")

        return pulumi.Output.from_input(asyncio.ensure_future(resolve_all()))

    run()
    return OfflineRun(
        resources=list(monitor.registered),
        outputs=_plain_numbers(captured.get("outputs", {})),
        secret_outputs=captured.get("secret_outputs", []),
        files=captured.get("files", {}),
        warnings=warnings,
    )


class _Collect(logging.Handler):
    """The program's pulumi.log warnings (and errors), in order."""

    def __init__(self, into: list[str]):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())
