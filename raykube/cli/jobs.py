"""`raykube jobs`: run Ray jobs on a stack's cluster through the Ray Jobs API.

  submit [--working-dir DIR] [--runtime-env FILE] [--no-wait] -- ENTRYPOINT...
  logs JOB_ID [--follow]    status JOB_ID    stop JOB_ID    list [--output json]

Where the Jobs API is: --address URL; otherwise the stack's cluster
(--stack/--config, and --cluster NAMESPACE/NAME when it has several), reached
through a `kubectl port-forward` to its head Service that this command starts
and stops itself (the stack's kubeconfig and context). The auth token:
RAY_AUTH_TOKEN if set, else the cluster's token Secret (auth.mode token).

`submit` streams the job's logs with a progress line on stderr and exits with
the job's outcome: 0 succeeded, 1 failed or stopped (the job's error is
printed). A dropped connection or a restarted head is retried with backoff
for up to --reconnect-seconds. Unusable settings exit 2, an unreachable
address, a refused token or a Ray version mismatch exit 3.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, TextIO

from raykube.stack_file import EXIT_INVALID_SETTINGS, StackFileError, add_stack_arguments, read_stack_file

EXIT_JOB_FAILED = 1
EXIT_UNREACHABLE = 3
DASHBOARD_PORT = 8265


class JobsError(Exception):
    """A user-facing failure; `exit_code` says which kind."""

    def __init__(self, message: str, exit_code: int = EXIT_UNREACHABLE):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class PortForward:
    """`kubectl port-forward` to a head Service, restarted if it dies (e.g. with the head pod)."""

    argv: list[str]
    process: Optional[subprocess.Popen] = None
    port: int = 0

    def ensure(self) -> str:
        if self.process is None or self.process.poll() is not None:
            self._start()
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        try:
            self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            raise JobsError("kubectl is not installed: install it, or give the Jobs API with --address") from None
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line or "")
            if match:
                self.port = int(match.group(1))
                return
            if not line and self.process.poll() is not None:
                break
        error = self.process.stderr.read() if self.process.stderr and self.process.poll() is not None else "timed out"
        self.close()
        raise JobsError(f"`{' '.join(self.argv)}` failed: {error.strip()}")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


@dataclass
class Target:
    """Where the Jobs API is and how to authenticate to it."""

    address: Optional[str] = None
    forward: Optional[PortForward] = None
    token: Optional[str] = None
    description: str = ""
    allow_version_mismatch: bool = False
    _clients: list = field(default_factory=list, repr=False)

    def url(self) -> str:
        return self.forward.ensure() if self.forward else str(self.address)

    def client(self):
        """A JobSubmissionClient, checked: reachable, token accepted, same Ray version."""
        import requests
        from ray import __version__ as client_version
        from ray.job_submission import JobSubmissionClient

        url = self.url()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            client = JobSubmissionClient(url, headers=headers)
        except requests.exceptions.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            if status in (401, 403):
                raise _token_refused(self.description or url, status) from None
            raise JobsError(f"the Ray Jobs API at {self.description or url} answered HTTP {status}: {error}") from None
        except ConnectionError as error:
            raise JobsError(f"cannot reach the Ray Jobs API at {self.description or url}: {error}") from None
        except Exception as error:  # ray's AuthenticationError and friends
            if _is_auth_error(error):
                raise _token_refused(self.description or url, 0) from None
            raise
        server_version = getattr(client, "_server_ray_version", None)
        if server_version and server_version != client_version and not self.allow_version_mismatch:
            raise JobsError(
                f"the cluster at {self.description or url} runs Ray {server_version}, this client Ray {client_version}: "
                f"install ray=={server_version} here (or pass --allow-version-mismatch)"
            )
        return client

    def close(self) -> None:
        if self.forward:
            self.forward.close()


def _is_auth_error(error: Exception) -> bool:
    return type(error).__name__ == "AuthenticationError" or "Authentication required" in str(error) or "Authentication failed" in str(error)


def _token_refused(where: str, status: int) -> JobsError:
    what = "no token was sent" if status == 401 else "the token was refused"
    return JobsError(
        f"the Ray cluster at {where} requires its auth token and {what}: set RAY_AUTH_TOKEN, or use --stack so "
        "raykube reads it from the cluster's token Secret (stack output rayClusters.*.authTokenCommand)"
    )


def _cluster_of(settings, wanted: Optional[str]):
    clusters = {f"{c.namespace}/{c.name}": c for c in settings.ray_clusters}
    if wanted:
        if wanted not in clusters:
            raise JobsError(f"--cluster {wanted}: the stack has {', '.join(clusters)}", EXIT_INVALID_SETTINGS)
        return clusters[wanted]
    if len(clusters) > 1:
        raise JobsError(f"the stack has several Ray clusters ({', '.join(clusters)}): choose one with --cluster", EXIT_INVALID_SETTINGS)
    return next(iter(clusters.values()))


def _cluster_token(settings, cluster) -> Optional[str]:
    from components.ray_cluster import AUTH_TOKEN_KEY, auth_token_secret
    from raykube.cluster_api import ClusterUnreachable, core_api, reaching

    if cluster.auth.mode != "token":
        return None
    try:
        core = core_api(settings)
        with reaching(core):
            secret = core.read_namespaced_secret(auth_token_secret(cluster.name), cluster.namespace)
    except ClusterUnreachable as error:
        raise JobsError(f"{error}; or set RAY_AUTH_TOKEN and pass --address") from None
    except Exception as error:
        raise JobsError(
            f"cannot read the auth token Secret {cluster.namespace}/{auth_token_secret(cluster.name)}: {error}; "
            "set RAY_AUTH_TOKEN instead"
        ) from None
    return base64.b64decode(secret.data[AUTH_TOKEN_KEY]).decode()


def resolve_target(args) -> Target:
    token = os.environ.get("RAY_AUTH_TOKEN") or None
    if args.address:
        # Without a scheme Ray's client takes the address for a GCS one and hangs in its gRPC retries.
        if not re.match(r"^https?://[^/\s]+", args.address):
            raise JobsError(f"--address {args.address}: give the Jobs API URL with its scheme, e.g. http://{args.address.split('://')[-1]}",
                            EXIT_INVALID_SETTINGS)
        return Target(address=args.address.rstrip("/"), token=token, description=args.address,
                      allow_version_mismatch=args.allow_version_mismatch)
    if not (args.stack or args.config):
        raise JobsError("say where the cluster is: --stack NAME (or --config FILE), or --address URL", EXIT_INVALID_SETTINGS)
    stack_file = read_stack_file(args.stack, args.config)
    settings = stack_file.settings()
    cluster = _cluster_of(settings, args.cluster)
    from components.ray_cluster import head_service_name

    kubectl = ["kubectl"]
    if settings.kubeconfig:
        kubectl += ["--kubeconfig", settings.kubeconfig]
    if settings.kube_context:
        kubectl += ["--context", settings.kube_context]
    forward = PortForward(kubectl + ["-n", cluster.namespace, "port-forward", f"service/{head_service_name(cluster.name)}", f":{DASHBOARD_PORT}"])
    return Target(forward=forward, token=token or _cluster_token(settings, cluster),
                  description=f"{cluster.namespace}/{cluster.name} (stack {stack_file.stack}, via kubectl port-forward)",
                  allow_version_mismatch=args.allow_version_mismatch)


# --- following a job ---------------------------------------------------------

def _connection_trouble(error: Exception) -> bool:
    """A dropped or refused connection, or a head that is restarting (5xx)."""
    import requests

    if isinstance(error, (ConnectionError, requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    if isinstance(error, JobsError) and error.exit_code == EXIT_UNREACHABLE and "cannot reach" in str(error):
        return True
    return isinstance(error, RuntimeError) and bool(re.search(r"status code 5\d\d", str(error)))


def follow(target: Target, job_id: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
           poll_seconds: float = 1.0, reconnect_seconds: float = 600, progress_seconds: float = 30,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Stream the job's logs until it ends; reconnect with backoff. Returns the exit code."""
    from ray.job_submission import JobStatus

    client, printed, last_status, failures = None, 0, None, 0
    started = last_progress = time.monotonic()
    down_since: Optional[float] = None
    while True:
        try:
            client = client or target.client()
            status = client.get_job_status(job_id)
            logs = client.get_job_logs(job_id)
        except Exception as error:
            if not _connection_trouble(error):
                raise
            client = None
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > reconnect_seconds:
                raise JobsError(f"lost the connection to {target.description or target.address} for {reconnect_seconds:.0f}s: {error}") from None
            delay = min(2 ** failures, 30)
            failures += 1
            print(f"[raykube] connection lost ({str(error).splitlines()[0][:120]}); retrying in {delay}s", file=err, flush=True)
            sleep(delay)
            continue
        if down_since is not None:
            print(f"[raykube] reconnected after {time.monotonic() - down_since:.0f}s", file=err, flush=True)
        failures, down_since = 0, None
        if len(logs) > printed:
            out.write(logs[printed:])
            out.flush()
            printed = len(logs)
        now = time.monotonic()
        if status != last_status or now - last_progress >= progress_seconds:
            print(f"[raykube] job {job_id}: {status.value} ({now - started:.0f}s)", file=err, flush=True)
            last_status, last_progress = status, now
        if status.is_terminal():
            break
        sleep(poll_seconds)
    if status == JobStatus.SUCCEEDED:
        return 0
    info = client.get_job_info(job_id)
    print(f"[raykube] job {job_id} {status.value}: {info.message or ''}".rstrip(), file=err, flush=True)
    return EXIT_JOB_FAILED


# --- commands ----------------------------------------------------------------

def _runtime_env(args) -> dict:
    runtime_env: dict = {}
    if args.runtime_env:
        import yaml

        try:
            runtime_env = yaml.safe_load(Path(args.runtime_env).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise JobsError(f"--runtime-env {args.runtime_env}: {error}", EXIT_INVALID_SETTINGS) from None
        if not isinstance(runtime_env, dict):
            raise JobsError(f"--runtime-env {args.runtime_env} must be a mapping (pip, env_vars, working_dir, ...)", EXIT_INVALID_SETTINGS)
    if args.working_dir:
        if not Path(args.working_dir).is_dir():
            raise JobsError(f"--working-dir {args.working_dir} is not a directory", EXIT_INVALID_SETTINGS)
        runtime_env["working_dir"] = str(Path(args.working_dir).resolve())
    return runtime_env


def server_reason(error: Exception) -> str:
    """What the Jobs API said, in one line: its exception's message, not its traceback."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if any("Traceback (most recent call last)" in line for line in lines):
        # The server's exception is the last "SomeError: ..." line (and what follows it).
        raised = max((index for index, line in enumerate(lines) if re.match(r"^[\w.]+(?:Error|Exception): ", line)), default=len(lines) - 1)
        lines = [" ".join(lines[raised:])]
    reason = lines[0] if lines else type(error).__name__
    return re.sub(r"^[\w.]+(?:Error|Exception): ", "", reason)


def submit(args, target: Target) -> int:
    entrypoint = [part for part in args.entrypoint if part != "--"]
    if not entrypoint:
        raise JobsError("nothing to run: give the entrypoint after --, e.g. -- python job.py", EXIT_INVALID_SETTINGS)
    client = target.client()
    job_id = client.submit_job(entrypoint=shlex.join(entrypoint), runtime_env=_runtime_env(args) or None,
                               submission_id=args.submission_id)
    print(f"[raykube] submitted job {job_id} to {target.description or target.address}", file=sys.stderr, flush=True)
    if args.no_wait:
        print(job_id)
        return 0
    return follow(target, job_id, reconnect_seconds=args.reconnect_seconds)


def job_table(rows: list[dict]) -> str:
    if not rows:
        return "no jobs"
    width = max(len("ID"), *(len(row["id"]) for row in rows))
    lines = [f"{'ID':<{width}}  {'STATUS':<9}  ENTRYPOINT"]
    # One line per job: a multi-line entrypoint (python -c "...") shows its newlines as \n.
    lines += [f"{row['id']:<{width}}  {row['status']:<9}  {(row['entrypoint'] or '').replace(chr(10), chr(92) + 'n')}" for row in rows]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="raykube jobs", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    common = argparse.ArgumentParser(add_help=False)
    add_stack_arguments(common)
    common.add_argument("--cluster", help="NAMESPACE/NAME of the Ray cluster, when the stack has several")
    common.add_argument("--address", help="Jobs API URL (e.g. http://127.0.0.1:8265) instead of a port-forward")
    common.add_argument("--allow-version-mismatch", action="store_true", help="talk to a cluster of another Ray version")
    commands = parser.add_subparsers(dest="command", required=True)
    submit_parser = commands.add_parser("submit", parents=[common], help="submit a job and follow it",
                                        description="Submit a job and stream its logs until it ends; the exit status is the job's outcome.")
    submit_parser.add_argument("--working-dir", help="directory uploaded as the job's working directory")
    submit_parser.add_argument("--runtime-env", help="YAML or JSON runtime environment (pip, env_vars, ...)")
    submit_parser.add_argument("--submission-id", help="job id to use (default Ray's)")
    submit_parser.add_argument("--no-wait", action="store_true", help="print the job id and return")
    submit_parser.add_argument("--reconnect-seconds", type=float, default=600, help="how long to retry a lost connection (default 600)")
    submit_parser.add_argument("entrypoint", nargs=argparse.REMAINDER, help="-- the command the job runs")
    logs_parser = commands.add_parser("logs", parents=[common], help="a job's logs", description="Print a job's logs (--follow: until it ends).")
    logs_parser.add_argument("job_id")
    logs_parser.add_argument("--follow", action="store_true", help="keep streaming until the job ends")
    for name, text, description in (
        ("status", "a job's status", "Print a job's status; exit 0 while it runs or after it succeeded, 1 otherwise."),
        ("stop", "stop a job", "Ask the cluster to stop a job."),
    ):
        commands.add_parser(name, parents=[common], help=text, description=description).add_argument("job_id")
    list_parser = commands.add_parser("list", parents=[common], help="the cluster's jobs", description="The cluster's jobs, oldest first.")
    list_parser.add_argument("--output", choices=("table", "json"), default="table", help="a table for people, or JSON for scripts (default table)")
    args = parser.parse_args(argv)

    from raykube.settings import SettingsError

    target = None
    try:
        target = resolve_target(args)
        if args.command == "submit":
            return submit(args, target)
        if args.command == "logs" and args.follow:
            return follow(target, args.job_id)
        client = target.client()
        if args.command == "logs":
            sys.stdout.write(client.get_job_logs(args.job_id))
        elif args.command == "status":
            info = client.get_job_info(args.job_id)
            print(f"{args.job_id}: {info.status.value}" + (f" ({info.message})" if info.message else ""))
            return 0 if info.status.value in ("SUCCEEDED", "RUNNING", "PENDING") else EXIT_JOB_FAILED
        elif args.command == "stop":
            print(f"{args.job_id}: {'stop requested' if client.stop_job(args.job_id) else 'already ended'}")
        else:
            rows = [{"id": job.submission_id or job.job_id, "status": job.status.value, "entrypoint": job.entrypoint}
                    for job in sorted(client.list_jobs(), key=lambda job: job.start_time or 0)]
            print(json.dumps(rows, indent=2) if args.output == "json" else job_table(rows))
        return 0
    except (StackFileError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except RuntimeError as error:
        # What the Jobs API refused: an unknown job id, a runtime environment it cannot build, ...
        print(f"error: the Ray Jobs API at {target.description if target else args.address} refused: {server_reason(error)}", file=sys.stderr)
        return EXIT_JOB_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        if target is not None:
            target.close()


if __name__ == "__main__":
    sys.exit(main())
