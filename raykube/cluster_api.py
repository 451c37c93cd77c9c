"""Talking to a stack's Kubernetes cluster from raykube's commands: one client, one kind of error.

The kubeconfig and context come from the stack's settings (raykube:kubeconfig,
raykube:kubeContext; default KUBECONFIG and its current context). A cluster
that cannot be reached, or a kubeconfig that cannot be loaded, is one
ClusterUnreachable naming the API server and what to check: never the HTTP
library's retry traceback.
"""
from __future__ import annotations

import contextlib
from typing import Iterator


class ClusterUnreachable(Exception):
    """The stack's Kubernetes API server cannot be used; the message says which and why."""


def api_client(settings):
    """An ApiClient for the stack's kubeconfig and context, failing fast (one retry, 10 s timeouts)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    import yaml

    try:
        client = config.new_client_from_config(config_file=settings.kubeconfig, context=settings.kube_context)
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, AttributeError, KeyError) as error:
        # The client's loader trusts the file's shape: a garbage kubeconfig (not YAML, a list, not
        # UTF-8, bad base64) surfaces as any of these. One line, never its traceback.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not isinstance(error, (ConfigException, OSError)):
            reason = f"not a kubeconfig ({type(error).__name__}: {reason})"
        raise ClusterUnreachable(f"cannot load the kubeconfig (raykube:kubeconfig / raykube:kubeContext or KUBECONFIG): {reason[:300]}") from None
    client.configuration.retries = 1
    return client


def core_api(settings):
    from kubernetes import client

    return client.CoreV1Api(api_client(settings))


@contextlib.contextmanager
def reaching(api) -> Iterator[None]:
    """Turn 'cannot connect' while using `api` into one ClusterUnreachable naming the server."""
    import urllib3

    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError) as error:
        host = getattr(getattr(api, "api_client", api), "configuration", None)
        where = getattr(host, "host", "the API server")
        reason = getattr(error, "reason", None) or error
        raise ClusterUnreachable(
            f"cannot reach the Kubernetes API server at {where} ({type(reason).__name__}): check the kubeconfig context "
            "(raykube:kubeContext), the VPN or the cluster"
        ) from None
