"""The credentials Secret's format: what every writer puts in it and every Ray container reads.

Written by AwsRoleBridge (`pulumi up`), `raykube credentials renew` and the in-cluster
renewer, whose CronJob runs this file as shipped in its ConfigMap: the standard library only.
"""

import json
from datetime import datetime, timezone
from typing import Any

EXPIRES_ANNOTATION = "raykube.io/credentials-expire-at"
CREDENTIALS_KEY = "credential-process.json"
CONFIG_KEY = "config"
SECRET_KEYS = (CONFIG_KEY, CREDENTIALS_KEY)
DEFAULT_MOUNT_PATH = "/etc/aws"


def aws_config_file(mount_path: str, region: str) -> str:
    """The AWS config file Ray containers read (AWS_CONFIG_FILE)."""
    return (
        "[default]\n"
        f"region = {region}\n"
        # `cat` of the mounted file: no script, no interpreter, in every Ray image.
        f"credential_process = cat {mount_path.rstrip('/')}/{CREDENTIALS_KEY}\n"
    )


def credential_process_json(access_key_id: str, secret_access_key: str, session_token: str, expiration: str) -> str:
    """What a `credential_process` prints (Version 1, with Expiration: refreshable)."""
    expires = datetime.fromisoformat(expiration.replace("Z", "+00:00")).astimezone(timezone.utc)
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": access_key_id,
            "SecretAccessKey": secret_access_key,
            "SessionToken": session_token,
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        indent=2,
    )


def secret_data(credentials: dict[str, Any], region: str, mount_path: str = DEFAULT_MOUNT_PATH) -> dict[str, str]:
    """The Secret's keys, from assume_role's outputs (access_key_id, ..., expiration)."""
    return {
        CONFIG_KEY: aws_config_file(mount_path, region),
        CREDENTIALS_KEY: credential_process_json(
            credentials["access_key_id"], credentials["secret_access_key"], credentials["session_token"], credentials["expiration"]
        ),
    }
