"""The tests' own cluster harness: a test run that is killed (CI's time limit, a second Ctrl-C)
leaves no control plane running behind it, holding ports and memory."""
from __future__ import annotations

import signal
import subprocess
import sys

from tests.helpers.cluster_processes import ROOT, binary
from tests.helpers.envtest import wait_for

STARTER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.helpers.envtest import ControlPlane
plane = ControlPlane(Path(sys.argv[2]))
print(plane.processes.running["etcd"].pid, plane.processes.running["kube-apiserver"].pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_killed_run_leaves_no_control_plane_behind(tmp_path):
    binary("kube-apiserver")
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(ROOT), str(tmp_path / "plane")], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in starter.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    finally:
        starter.send_signal(signal.SIGKILL)  # no clean-up runs: the harness's processes must go on their own
        starter.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in pids), 30, "etcd and kube-apiserver to end with the run that started them")
