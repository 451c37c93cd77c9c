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
