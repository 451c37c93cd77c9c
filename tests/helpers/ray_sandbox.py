"""A real Ray cluster in its own network and PID namespaces, for tests.

Nodes get loopback addresses other than 127.0.0.1 (Ray rewrites that one to
the machine's address), explicit --memory and --object-store-memory, and a
private --temp-dir. Token authentication is on, as on raykube's clusters:
every process started here has the token, unless a test takes it away.
Everything stops when the sandbox closes.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 80 * 1024 * 1024
# The head every real-Ray test shares: CPU 0 as raykube's default head.
HEAD_GROUP = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}, "ray_resources": {"CPU": 0}}


class RaySandbox:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="rk-"))
        self.agent = subprocess.Popen(
            ["unshare", "-rnpf", "--mount-proc", sys.executable, "-u", str(HERE / "netns_agent.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.head_ip = "127.0.0.2"
        self.gcs_address = f"{self.head_ip}:6379"
        self.dashboard_port = 8265
        self.auth_token = secrets.token_hex(16)
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.auth_token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "60",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }

    def _call(self, **request) -> dict:
        assert self.agent.stdin and self.agent.stdout
        self.agent.stdin.write(json.dumps(request) + "\n")
        self.agent.stdin.flush()
        reply = json.loads(self.agent.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def run(self, argv: Sequence[str], env: Optional[dict] = None, timeout: float = 120) -> subprocess.CompletedProcess:
        reply = self._call(op="run", argv=list(argv), env={**self.env, **(env or {})}, timeout=timeout)
        return subprocess.CompletedProcess(argv, reply["rc"], reply["stdout"], reply["stderr"])

    def check(self, argv: Sequence[str], env: Optional[dict] = None, timeout: float = 120) -> str:
        done = self.run(argv, env, timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def spawn(self, argv: Sequence[str], name: str, env: Optional[dict] = None) -> int:
        log = self.workdir / f"{name}.log"
        return self._call(op="spawn", argv=list(argv), env={**self.env, **(env or {})}, log=str(log))["id"]

    def signal(self, proc_id: int, signum: int) -> None:
        self._call(op="signal", id=proc_id, signal=signum)

    def wait(self, proc_id: int, timeout: float = 120) -> int:
        return self._call(op="wait", id=proc_id, timeout=timeout)["rc"]

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def start_head(self, start_args: Sequence[str], memory: int) -> None:
        self.check(
            [RAY, "start", "--head", f"--node-ip-address={self.head_ip}", "--port=6379",
             f"--temp-dir={self.workdir}/ray", "--disable-usage-stats",
             # The dashboard serves the Jobs API, as on a KubeRay head.
             "--include-dashboard=true", f"--dashboard-host={self.head_ip}", f"--dashboard-port={self.dashboard_port}",
             f"--object-store-memory={OBJECT_STORE_BYTES}", *self._with_memory(start_args, memory)],
            timeout=180,
        )

    @staticmethod
    def _with_memory(start_args: Sequence[str], memory: int) -> list[str]:
        args = list(start_args)
        if not any(arg.startswith("--memory") for arg in args):
            args.append(f"--memory={memory}")
        return args

    def python(self, code: str, env: Optional[dict] = None, timeout: float = 180) -> str:
        """Run a Ray driver inside the sandbox, connected to the head."""
        return self.check([sys.executable, "-c", code], env={"RAY_ADDRESS": self.gcs_address, **(env or {})}, timeout=timeout)

    def wait_for_nodes(self, count: int, timeout: float = 90) -> list[dict]:
        code = (
            "import json, ray\n"
            f"ray.init(address='{self.gcs_address}', _node_ip_address='{self.head_ip}', logging_level='ERROR')\n"
            "print(json.dumps([n for n in ray.nodes() if n['Alive']]))\n"
        )
        deadline = time.monotonic() + timeout
        while True:
            nodes = json.loads(self.python(code).strip().splitlines()[-1])
            if len(nodes) >= count or time.monotonic() > deadline:
                return nodes
            time.sleep(1)

    def close(self) -> None:
        try:
            self.run([RAY, "stop", "--force"], timeout=60)
        except Exception:
            pass
        if self.agent.poll() is None:
            self.agent.stdin.close()  # the agent exits; its PID namespace and everything in it die
            try:
                self.agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
