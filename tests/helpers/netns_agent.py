"""Runs inside `unshare -rnpf --mount-proc`: executes commands sent on stdin.

The test process stays in the host's namespaces; Ray runs in a private
network namespace (loopback only), PID namespace (`ray stop` cannot reach
any other Ray on the machine) and mount namespace (the root filesystem
read-only, as in raykube's pods). One JSON request per line, one reply per line.
"""
import json
import os
import signal
import subprocess
import sys

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
# The filesystem of a raykube Ray pod: the image read-only (readOnlyRootFilesystem),
# /tmp writable (its emptyDir, where Ray keeps /tmp/ray) and /dev/shm (the
# object store's). /tmp becomes a mount of its own first, so it stays writable.
subprocess.run(["mount", "--bind", "/tmp", "/tmp"], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", "/"], check=True)
procs: dict[int, subprocess.Popen] = {}
next_id = 0
signal.signal(signal.SIGCHLD, signal.SIG_DFL)

for line in sys.stdin:
    request = json.loads(line)
    op = request["op"]
    env = {**os.environ, **request.get("env", {})}
    reply: dict = {}
    try:
        if op == "run":
            done = subprocess.run(request["argv"], env=env, capture_output=True, text=True, timeout=request.get("timeout", 120))
            reply = {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        elif op == "spawn":
            log = open(request["log"], "w")
            proc = subprocess.Popen(request["argv"], env=env, stdout=log, stderr=subprocess.STDOUT)
            next_id += 1
            procs[next_id] = proc
            reply = {"id": next_id, "pid": proc.pid}
        elif op == "signal":
            procs[request["id"]].send_signal(request["signal"])
            reply = {"ok": True}
        elif op == "wait":
            reply = {"rc": procs[request["id"]].wait(timeout=request.get("timeout", 120))}
        elif op == "poll":
            reply = {"rc": procs[request["id"]].poll()}
        else:
            reply = {"error": f"unknown op {op}"}
    except Exception as error:  # reported to the test, which fails with it
        reply = {"error": f"{type(error).__name__}: {error}"}
    # Reap daemons that `ray start` left to us as PID 1.
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
