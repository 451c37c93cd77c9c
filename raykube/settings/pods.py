"""What pods take from the settings, checked as the API server would: tolerations,
label maps, annotations, environment variable names."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError, field_validator, model_validator

from components.kubernetes_names import annotations_problem, labels_problem, qualified_name_problem
from raykube.settings.model import Model
from raykube.settings.checked import LabelValue

# An environment variable name the API server takes (C identifiers, plus '-' and '.').
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class Toleration(Model):
    """A pod toleration, as core/v1 Toleration (the stack file keeps the API's field names)."""

    key: Optional[str] = Field(default=None, description="the taint's key; empty with operator Exists: every taint")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal")
    value: Optional[LabelValue] = Field(default=None, description="the taint's value (operator Equal)")
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = Field(default=None, description="the taint's effect; empty: every effect")
    toleration_seconds: Optional[int] = Field(default=None, ge=-(2**63), le=2**63 - 1, description="NoExecute: how long the pod stays on the tainted node")

    @field_validator("key")
    @classmethod
    def _key(cls, key: Optional[str]) -> Optional[str]:
        problem = qualified_name_problem(key) if key else None
        if problem:
            raise ValueError(problem)
        return key

    @model_validator(mode="after")
    def _api_rules(self) -> "Toleration":
        # core/v1 validation: these combinations are refused by the API server.
        if self.operator == "Exists" and self.value:
            raise ValueError("__value__ must be empty with operator Exists (it matches any value)")
        if not self.key and self.operator != "Exists":
            raise ValueError("__operator__ an empty key tolerates every taint only with operator Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("__tolerationSeconds__ only NoExecute evicts, so tolerationSeconds needs effect: NoExecute")
        return self


def check_tolerations(tolerations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tolerations as given (API field names, as the components pass them on), each checked as a Toleration."""
    for index, toleration in enumerate(tolerations):
        try:
            Toleration.model_validate(toleration)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            loc = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                message = "unknown toleration field (key, operator, value, effect, tolerationSeconds)"
            if message.startswith("__"):  # the model's own rule names its field
                raise ValueError(f"__{index}.{message[2:]}") from None
            raise ValueError(f"__{index}{'.' + loc if loc else ''}__ {message}") from None
    return tolerations


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    problem = labels_problem(labels)
    if problem:
        raise ValueError(problem)
    return labels


def check_annotations(annotations: dict[str, str]) -> dict[str, str]:
    problem = annotations_problem(annotations)
    if problem:
        raise ValueError(problem)
    return annotations


def check_env_names(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name (letters, digits, '_', '-', '.'; not a digit first)")
    return env
