"""A Ray actor on the session's real Ray cluster that keeps one boto3 client and reads the bucket again
after each credentials rotation, noting which access key signed each read: what a long-running Ray job
does while the credentials Secret under it is renewed."""
from __future__ import annotations

import json
import time
from pathlib import Path

DRIVER = """
import json, os, sys, time, ray
env, endpoint, bucket, key, signals, rotations = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
ray.init(address=os.environ["RAY_ADDRESS"], _node_ip_address=os.environ["HEAD_IP"], logging_level="ERROR",
         runtime_env={"env_vars": env})

@ray.remote(num_cpus=0)
class Reader:
    def __init__(self):
        import boto3
        self.used = []
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        self.s3.meta.events.register("before-send.s3", self._note_key)

    def _note_key(self, request, **kwargs):
        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        self.used.append(auth.split("Credential=")[1].split("/")[0])

    def read(self):
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        return {"body": body, "key": self.used[-1], "pid": os.getpid()}

reader = Reader.remote()
print("READ 0", json.dumps(ray.get(reader.read.remote())), flush=True)
for rotation in range(1, rotations + 1):
    deadline = time.time() + 90
    while not os.path.exists(os.path.join(signals, str(rotation))) and time.time() < deadline:
        time.sleep(0.2)
    print(f"READ {rotation}", json.dumps(ray.get(reader.read.remote())), flush=True)
"""


class RotatingReader:
    """Start the driver; `read(n)` waits for the n-th read (0: before any rotation); `rotated(n)` lets read n happen."""

    def __init__(self, ray_head, env: dict, endpoint: str, bucket: str, key: str, signals: Path, rotations: int, name: str):
        from tests.helpers.ray_sandbox import RAY

        self.ray_head, self.signals, self.name = ray_head, signals, name
        signals.mkdir(parents=True, exist_ok=True)
        self.process = ray_head.spawn(
            [RAY.replace("/ray", "/python"), "-c", DRIVER, json.dumps(env), endpoint, bucket, key, str(signals), str(rotations)],
            name, env={"RAY_ADDRESS": ray_head.gcs_address, "HEAD_IP": ray_head.head_ip},
        )

    def read(self, number: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = next((line for line in self.ray_head.log(self.name).splitlines() if line.startswith(f"READ {number} ")), None)
            if line:
                return json.loads(line.split(" ", 2)[2])
            time.sleep(0.5)
        raise AssertionError(f"no read {number}:\n{self.ray_head.log(self.name)}")

    def rotated(self, number: int) -> None:
        (self.signals / str(number)).touch()

    def finish(self, timeout: float = 120) -> int:
        return self.ray_head.wait(self.process, timeout=timeout)
