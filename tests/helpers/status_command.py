"""`raykube status` as a user runs it, for a stack file's config, against the simulated cluster."""
from __future__ import annotations

import subprocess
import sys

import yaml


def status(sim, config: dict, tmp_path, *options: str) -> tuple[int, str, str]:
    stack_file = tmp_path / "Pulumi.sim.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {**config, "raykube:kubeconfig": sim.plane.kubeconfig}}))
    done = subprocess.run([sys.executable, "-m", "raykube.status", "--config", str(stack_file), *options], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr
