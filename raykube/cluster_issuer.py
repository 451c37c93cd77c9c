"""The documents of a kubeadm cluster's ServiceAccount issuer that `pulumi up` publishes (awsAccess.issuerBucket).

They come from the running cluster, through the Kubernetes API (`/.well-known/openid-configuration`
and `/openid/v1/jwks`), exactly as its API server serves them. When the cluster cannot give them
(before `kubeadm init`, a VPN down, an API server not yet restarted with the stack's issuer), the
copies already in the bucket are kept: a `pulumi up` from a machine that cannot reach the cluster
must not unpublish the keys every Ray pod's AWS access rests on. Each case is one warning saying
what to do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from components.published_oidc_issuer import DISCOVERY_KEY, JWKS_KEY
from raykube.cluster_api import ClusterUnreachable, api_client, reaching


@dataclass(frozen=True)
class IssuerDocuments:
    discovery_document: str
    jwks: str


@dataclass(frozen=True)
class IssuerLookup:
    documents: Optional[IssuerDocuments]
    # What `pulumi up` says when the documents are not the cluster's current ones (None: all is well).
    warning: Optional[str] = None


def cluster_documents(settings) -> IssuerDocuments:
    """The discovery document and JWKS the stack's cluster serves (ClusterUnreachable if it cannot)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = api_client(settings)
    with reaching(api):
        try:
            # Unparsed: what is published is byte for byte what the API server serves.
            discovery = client.WellKnownApi(api).get_service_account_issuer_open_id_configuration(_preload_content=False, _request_timeout=10)
            jwks = client.OpenidApi(api).get_service_account_issuer_open_id_keyset(_preload_content=False, _request_timeout=10)
        except ApiException as error:
            raise ClusterUnreachable(f"the API server refused to serve its issuer documents ({error.status} {error.reason})") from None
    return IssuerDocuments(discovery.data.decode(), jwks.data.decode())


def published_documents(access) -> Optional[IssuerDocuments]:
    """The copies in the issuer bucket, or None (not published yet, or not readable from here)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # A session of its own: the deployer's credentials as they are now, not as boto3's default session cached them.
    s3 = boto3.session.Session().client(
        "s3", region_name=access.effective_region, endpoint_url=access.endpoint_url,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}, s3={"addressing_style": "path"} if access.endpoint_url else None),
    )
    try:
        bodies = [s3.get_object(Bucket=access.issuer_bucket, Key=key)["Body"].read().decode() for key in (DISCOVERY_KEY, JWKS_KEY)]
    except (BotoCoreError, ClientError):
        return None
    return IssuerDocuments(*bodies)


def issuer_documents(settings) -> IssuerLookup:
    """What to publish: the cluster's documents if it signs as the stack's issuer, else what is published."""
    access = settings.aws_access
    expected = f"https://{access.effective_oidc_issuer}"
    try:
        documents = cluster_documents(settings)
        served = json.loads(documents.discovery_document).get("issuer")
    except (ClusterUnreachable, ValueError, AttributeError) as error:
        why = f"the cluster cannot give its issuer documents ({error})"
    else:
        if served == expected:
            return IssuerLookup(documents)
        why = (
            f"the cluster's API server signs its tokens as {served}, not as the stack's issuer {expected}: apply the kubeadm config's "
            "apiServer flags (`sudo kubeadm init phase control-plane apiserver --config <kubeadm config>`, README: Local kubeadm)"
        )
    published = published_documents(access)
    if published is not None:
        return IssuerLookup(published, f"awsAccess.issuerBucket: {why}; the documents already in s3://{access.issuer_bucket} stay as they are")
    return IssuerLookup(
        None,
        f"awsAccess.issuerBucket: {why}; nothing is published yet, so AWS refuses the cluster's tokens (the Ray pods', the credentials renewer's) until the `pulumi up` "
        "after `kubeadm init` publishes the cluster's discovery document and JWKS",
    )
