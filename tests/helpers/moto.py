"""moto_server on 127.0.0.1, standing in for IAM, STS and S3, and roles made from the program's own policies."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from tests.helpers.program import run_program, stack_file_config


class MotoServer:
    """moto_server on 127.0.0.1 with IAM enforced after the first three actions."""

    def __init__(self) -> None:
        import os
        import socket
        import subprocess
        import time

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # The three unauthenticated actions make an administrator; IAM applies after.
        iam = self.client("iam", "bootstrap", "bootstrap")
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin", PolicyName="all",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, key_id: str, secret: str, token: Optional[str] = None):
        import boto3

        return boto3.client(
            service, region_name="us-east-1", endpoint_url=self.url,
            aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
        )

    def admin_client(self, service: str):
        return self.client(service, *self.admin)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


BUCKET, OTHER = "ray-input", "not-ours"


# --- AWS: roles made from the program's own documents, in the session's moto ---

def program_role_documents(bucket: str, principals: list[str]) -> tuple[str, str]:
    """The trust and permission policies the program itself creates for a secret-mode stack."""
    config = {**stack_file_config("local"), "raykube:awsAccess": {
        "mode": "secret", "region": "us-east-1", "bucket": bucket, "trustedPrincipals": principals}}
    result = run_program(config, "local")
    (role,) = result.of_type("aws:iam/role:Role")
    (policy,) = result.of_type("aws:iam/rolePolicy:RolePolicy")
    return role.inputs["assumeRolePolicy"], policy.inputs["policy"]


def create_program_role(iam, name: str, bucket: str, principals: list[str]) -> str:
    trust, policy = program_role_documents(bucket, principals)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="bucket", PolicyDocument=policy)
    return role["Arn"]


def role_of_run(moto: "MotoServer", run, name: str, bucket: str, key: str, body: bytes) -> str:
    """The program's one role (its trust and bucket policy, as `pulumi up` creates them) made in moto,
    and an object in the bucket for it to read; returns the role's ARN."""
    iam, s3 = moto.admin_client("iam"), moto.admin_client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    (role,) = run.of_type("aws:iam/role:Role")
    (policy,) = run.of_type("aws:iam/rolePolicy:RolePolicy")
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="bucket", PolicyDocument=policy.inputs["policy"])
    return created["Arn"]


class SigningStsRelay:
    """AWS takes AssumeRoleWithWebIdentity unsigned (the token is the proof), and botocore sends it
    so; moto with IAM enforced fails every unsigned request (a 500: it reads the Authorization
    header regardless). This relay, on a free loopback port, signs what it forwards to moto as a
    user that may call only that action, so botocore's own web-identity provider can run unchanged."""

    def __init__(self, moto: "MotoServer") -> None:
        import threading
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        import uuid

        iam = moto.admin_client("iam")
        user = f"sts-web-identity-relay-{uuid.uuid4().hex[:8]}"  # one per relay: several tests share the session's moto
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="web-identity", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        signer = SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "sts", "us-east-1")

        class Relay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = AWSRequest(method="POST", url=moto.url + self.path, data=body,
                                     headers={"Content-Type": self.headers.get("Content-Type", "application/x-www-form-urlencoded")})
                signer.add_auth(request)
                forwarded = urllib.request.Request(request.url, data=body, headers=dict(request.headers), method="POST")
                try:
                    with urllib.request.urlopen(forwarded, timeout=20) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
