"""The component package's provider: Pulumi's ComponentProvider, reporting a component's bad
arguments as the consumer's bad input rather than as a crash.

Pulumi's ComponentProvider wraps whatever a component's constructor raises in a
ComponentInitError, which its server reports as `Unexpected <class 'Exception'>` with the
provider's traceback. A ComponentArgsError is the consumer's mistake, found before anything is
registered: it goes back as an InputPropertiesError (gRPC INVALID_ARGUMENT), which the engine
shows as the one line naming the component and the field.
"""
from __future__ import annotations

from typing import Optional

from pulumi import ResourceOptions
from pulumi.errors import InputPropertiesError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.output import Inputs
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ComponentInitError

from components.args import ComponentArgsError


class PackageProvider(ComponentProvider):
    def construct(self, name: str, resource_type: str, inputs: Inputs, options: Optional[ResourceOptions] = None) -> ConstructResult:
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as error:
            if isinstance(error.inner, ComponentArgsError):
                # errors=[], not None: the SDK's server builds the gRPC status's trailing metadata only
                # from a list (None fails there with an AttributeError); an empty one adds no
                # per-property lines, so the engine shows this message alone.
                raise InputPropertiesError(str(error.inner), []) from None
            raise
