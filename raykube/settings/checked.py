"""Settings types that the API server's (or AWS's) own rules check, one rule each.

Each rule is the `*_problem` function the components use too (components/), so
a setting and a component argument are judged alike: the function returns why
a value is refused, or None.
"""
from __future__ import annotations

from typing import Annotated, Any, Callable, Optional

from pydantic import AfterValidator

from components.kubernetes_names import (
    host_problem, image_problem, label_value_problem, qualified_name_problem, repository_problem, subdomain_problem,
    tag_problem,
)


def refused_by(problem: Callable[[Any], Optional[str]]) -> AfterValidator:
    """A pydantic validator that raises the rule's message (pydantic names the key)."""
    def check(value: Any) -> Any:
        message = problem(value)
        if message:
            raise ValueError(message)
        return value

    return AfterValidator(check)


ObjectName = Annotated[str, refused_by(subdomain_problem)]
"""A Kubernetes object name (DNS-1123 subdomain)."""
HostName = Annotated[str, refused_by(host_problem)]
ImageReference = Annotated[str, refused_by(image_problem)]
ImageRepository = Annotated[str, refused_by(repository_problem)]
ImageTag = Annotated[str, refused_by(tag_problem)]
QualifiedName = Annotated[str, refused_by(qualified_name_problem)]
"""A label, annotation or taint key."""
LabelValue = Annotated[str, refused_by(label_value_problem)]
