"""The in-cluster renewer's one run, as its CronJob runs it: `python renew.py` in the Ray image.

1. AssumeRoleWithWebIdentity with the pod's own projected token (audience sts.amazonaws.com): no
   long-lived key anywhere in the cluster, and the call needs no signature (the token is the proof).
2. Only when that succeeded: the new credentials into the credentials Secret of every Ray namespace,
   by PATCH with the pod's ServiceAccount, whose Roles allow exactly those Secrets.

The standard library only, shipped with credentials_secret.py in a ConfigMap: nothing to build or
pull beyond the Ray image the cluster already runs, which promises neither boto3 nor the Kubernetes
client. Every failure is one line on stderr and exit 1 (the Job shows Failed, the CronJob retries at
its next slot); credentials and tokens are never printed.
"""

import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone

try:
    from components.credentials_secret import EXPIRES_ANNOTATION, secret_data
except ImportError:  # in the CronJob: the ConfigMap's two files side by side
    from credentials_secret import EXPIRES_ANNOTATION, secret_data

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FIELD_MANAGER = "raykube-credentials-renewer"
RENEWED_ANNOTATION = "raykube.io/credentials-renewed-at"
STS_XML = "{https://sts.amazonaws.com/doc/2011-06-15/}"


class RenewalError(Exception):
    """One line that says what failed; nothing of a credential in it."""


def sts_endpoint(env) -> str:
    return env.get("AWS_ENDPOINT_URL_STS") or f"https://sts.{env['AWS_REGION']}.amazonaws.com"


def assume_role_with_web_identity(env) -> dict:
    """STS credentials for AWS_ROLE_ARN with the token in AWS_WEB_IDENTITY_TOKEN_FILE, in assume_role's shape."""
    with open(env["AWS_WEB_IDENTITY_TOKEN_FILE"]) as token_file:
        token = token_file.read().strip()
    body = urllib.parse.urlencode({
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": env["AWS_ROLE_ARN"],
        "RoleSessionName": env.get("AWS_ROLE_SESSION_NAME", "raykube-renewer"),
        "WebIdentityToken": token,
        "DurationSeconds": env.get("DURATION_SECONDS", "3600"),
    }).encode()
    request = urllib.request.Request(sts_endpoint(env), data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            document = ElementTree.fromstring(response.read())
    except urllib.error.HTTPError as error:
        # STS's error document: <Error><Code>AccessDenied</Code><Message>...</Message></Error>
        try:
            detail = ElementTree.fromstring(error.read())
            code = detail.findtext(f".//{STS_XML}Code") or detail.findtext(".//Code")
            message = detail.findtext(f".//{STS_XML}Message") or detail.findtext(".//Message")
        except ElementTree.ParseError:
            code, message = error.code, error.reason
        raise RenewalError(f"AssumeRoleWithWebIdentity for {env['AWS_ROLE_ARN']} failed: {code}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RenewalError(f"cannot reach STS at {sts_endpoint(env)}: {error}") from None
    credentials = document.find(f".//{STS_XML}Credentials")
    if credentials is None:
        raise RenewalError("STS answered without credentials")
    field = {name: credentials.findtext(f"{STS_XML}{name}") for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}
    return {"access_key_id": field["AccessKeyId"], "secret_access_key": field["SecretAccessKey"],
            "session_token": field["SessionToken"], "expiration": field["Expiration"]}


def patch_secret(env, namespace: str, patch: dict) -> None:
    """A JSON merge patch of one credentials Secret, as this pod's ServiceAccount."""
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    with open(f"{SERVICE_ACCOUNT_DIR}/token") as token_file:
        token = token_file.read().strip()  # re-read each run: the kubelet rotates it
    context = ssl.create_default_context(cafile=f"{SERVICE_ACCOUNT_DIR}/ca.crt")
    name = env["SECRET_NAME"]
    url = f"https://{host}:{port}/api/v1/namespaces/{namespace}/secrets/{name}?fieldManager={FIELD_MANAGER}"
    request = urllib.request.Request(url, data=json.dumps(patch).encode(), method="PATCH", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30, context=context):
            pass
    except urllib.error.HTTPError as error:
        reason = json.loads(error.read() or b"{}").get("message", error.reason)
        raise RenewalError(f"cannot update Secret {namespace}/{name}: {error.code} {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RenewalError(f"cannot reach the Kubernetes API at {host}:{port}: {error}") from None


def renew(env) -> str:
    """Assume the role, then update every Ray namespace's Secret; returns the new expiry."""
    credentials = assume_role_with_web_identity(env)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {
        "metadata": {"annotations": {EXPIRES_ANNOTATION: credentials["expiration"], RENEWED_ANNOTATION: now}},
        "stringData": secret_data(credentials, env["AWS_REGION"], env["MOUNT_PATH"]),
    }
    namespaces = [namespace for namespace in env["RAY_NAMESPACES"].split(",") if namespace]
    for namespace in namespaces:
        patch_secret(env, namespace, patch)
        print(f"updated Secret {namespace}/{env['SECRET_NAME']}", flush=True)
    return credentials["expiration"]


def main() -> int:
    try:
        expiration = renew(os.environ)
    except RenewalError as error:
        print(f"raykube credentials renewer: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyError as error:
        print(f"raykube credentials renewer: the CronJob does not set {error}", file=sys.stderr, flush=True)
        return 1
    print(f"credentials renewed; they expire at {expiration}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
