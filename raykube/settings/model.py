"""The base of every settings section: strict, camelCase, frozen; one error type."""
from __future__ import annotations

import re

import pulumi
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

PROJECT = "raykube"
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes stores replica counts, HPA policy values and KubeRay's timeouts as
# int32: a larger value passes a schema check and is refused by the API server.
INT32_MAX = 2**31 - 1


class SettingsError(pulumi.RunError):
    """Invalid stack settings. A RunError, so Pulumi prints it without a traceback."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        if len(problems) == 1:  # one mistake, one line
            (key, message), = problems
            super().__init__(f"invalid settings in {source}: {key}: {message}")
            return
        lines = [f"invalid settings in {source}:"]
        lines += [f"  {key}: {message}" for key, message in problems]
        super().__init__("\n".join(lines))

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=False,
    )
