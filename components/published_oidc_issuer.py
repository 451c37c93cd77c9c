"""PublishedOidcIssuer: a kubeadm cluster's ServiceAccount issuer, made reachable by AWS (self-hosted IRSA).

AWS trusts a Kubernetes token only if it can fetch the issuer's discovery document
and JWKS over public https. A kubeadm cluster serves them only inside
(https://kubernetes.default.svc.cluster.local), so this publishes the two documents
the cluster serves to an S3 bucket whose regional address is the issuer: public-read
on exactly those two objects, nothing else readable, no ACLs.
"""
import json
from typing import Any, Optional, Required, TypedDict

import pulumi
import pulumi_aws as aws

from components.args import check_args, component_label

DISCOVERY_KEY = ".well-known/openid-configuration"
JWKS_KEY = "openid/v1/jwks"


def published_issuer(bucket: str, region: str) -> str:
    """The issuer (host, no scheme) of a cluster whose documents are published to `bucket`: the bucket's
    regional virtual-hosted address, which serves `/.well-known/openid-configuration` and `/openid/v1/jwks`
    exactly where OIDC clients (IAM among them) look for them."""
    return f"{bucket}.s3.{region}.amazonaws.com"


def public_documents_policy(bucket: str) -> dict[str, Any]:
    """Anyone may read the two documents (IAM and every OIDC client do, unauthenticated); nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicIssuerDocuments",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": [f"arn:aws:s3:::{bucket}/{DISCOVERY_KEY}", f"arn:aws:s3:::{bucket}/{JWKS_KEY}"],
            }
        ],
    }


class PublishedOidcIssuerArgs(TypedDict, total=False):
    """Arguments of PublishedOidcIssuer (plain values)."""

    bucket: Required[str]
    """the bucket raykube creates; its regional address https://<bucket>.s3.<region>.amazonaws.com is the issuer (required)."""
    region: Required[str]
    """the bucket's region (required)."""
    discovery_document: Optional[str]
    """the cluster's /.well-known/openid-configuration, as it serves it (default: not published yet)."""
    jwks: Optional[str]
    """the cluster's /openid/v1/jwks, as it serves it (default: not published yet)."""


class PublishedOidcIssuer(pulumi.ComponentResource):
    """The issuer's bucket, public-read on the discovery document and JWKS only, and the two documents once known."""

    issuer_url: pulumi.Output[str]
    """https://<bucket>.s3.<region>.amazonaws.com: the kube-apiserver's --service-account-issuer and the IAM OIDC provider's URL."""
    jwks_uri: pulumi.Output[str]
    """Where the JWKS is published: the kube-apiserver's --service-account-jwks-uri."""

    def __init__(self, name: str, args: PublishedOidcIssuerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("PublishedOidcIssuer", name), PublishedOidcIssuerArgs, args)
        super().__init__("raykube:index:PublishedOidcIssuer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket_name = args["bucket"]
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, opts=child)
        # No ACLs at all (BucketOwnerEnforced), no public ACL; a public policy is allowed, and it is the one below.
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=False,
            restrict_public_buckets=False,
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-public-documents",
            bucket=bucket.id,
            policy=json.dumps(public_documents_policy(bucket_name), sort_keys=True),
            # S3 refuses a public policy while the account's default block is still on the bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block, ownership]),
        )
        for part, key, body in (("discovery", DISCOVERY_KEY, args.get("discovery_document")), ("jwks", JWKS_KEY, args.get("jwks"))):
            if body is None:
                continue
            aws.s3.BucketObjectv2(
                f"{name}-{part}",
                bucket=bucket.id,
                key=key,
                content=body,
                content_type="application/json",
                # IAM re-reads the keys when it meets a token signed by a key it does not know: no stale copy.
                cache_control="max-age=300",
                opts=child,
            )
        self.issuer_url = pulumi.Output.from_input(f"https://{published_issuer(bucket_name, args['region'])}")
        self.jwks_uri = self.issuer_url.apply(lambda url: f"{url}/{JWKS_KEY}")
        self.register_outputs({"issuer_url": self.issuer_url, "jwks_uri": self.jwks_uri})
