"""The KubeRay operator in a network of its own where the cluster's addresses lead to the session's real Ray head.

Run as `unshare -rmn python serve_network.py <settings.json>` (new user, mount and network
namespaces: nothing of the machine's network or /etc/hosts changes). Inside:
- the pod network (kwok's --cidr) and the Service network are local addresses (`ip route add local`),
  so a connection to any pod or Service IP lands on this program's listeners;
- /etc/hosts is a bind mount of a file the tests keep writing (the cluster DNS's answers:
  `<service>.<namespace>.svc.cluster.local`, as the operator's FetchHeadServiceURL names a head);
- port 8265 (the dashboard's Serve API, which the operator's dashboard client calls) and port 8000
  (the Serve proxy, whose /-/healthz the operator checks on each head pod's IP) of each address
  listed in the `answering` file (the tests keep it: live pods' and Services' IPs, less those held
  back) are carried to the real head in the Ray sandbox; any other address resets the connection
  (nothing there, or a pod whose Ray is not up);
- the apiserver's loopback port is carried out to the host's apiserver;
- a `dial` socket connects a test's client to any address of this network (what kube-proxy does for
  a client of the serve Service).
(`serve_network.py relay <socket> <host> <port>` is that relay's far end, run inside the sandbox.)
Then it runs the operator with the given argv and environment, writes the `ready` file once the
operator's /readyz answers, and ends it on SIGTERM.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unix_tcp_bridge import pipe  # noqa: E402


def splice(client: socket.socket, upstream: socket.socket) -> None:
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def unix(path: str) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX)
    connection.connect(path)
    return connection


def answering(path: str, address: str) -> bool:
    try:
        with open(path) as listed:
            return address in listed.read().split()
    except OSError:
        return False


def to_the_head(port: int, socket_path: str, answering_path: str) -> None:
    """Any local address's `port`, to the sandbox's head through its relay (`socket_path`)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        if not answering(answering_path, client.getsockname()[0]):
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()  # RST: nothing listens there
            continue
        try:
            splice(client, unix(socket_path))
        except OSError:
            client.close()


def to_the_host(port: int, socket_path: str) -> None:
    """127.0.0.1:`port` here, to the host's 127.0.0.1:`port` through the host's relay."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        try:
            splice(client, unix(socket_path))
        except OSError:
            client.close()


def dialer(socket_path: str) -> None:
    """A client's first line names `address port`; the rest is carried there, in this network."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(socket_path)
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        line = b""
        while not line.endswith(b"\n"):
            chunk = client.recv(1)
            if not chunk:
                break
            line += chunk
        try:
            address, port = line.decode().split()
            splice(client, socket.create_connection((address, int(port)), timeout=5))
        except (OSError, ValueError):
            client.close()


def relay(socket_path: str, host: str, port: int) -> None:
    """Inside the Ray sandbox: the socket, to host:port there. Unlike unix_tcp_bridge.py it outlives
    a refused connection (the operator checks the Serve proxy before Serve has started it)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(socket_path)
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        try:
            splice(client, socket.create_connection((host, port), timeout=5))
        except OSError:
            client.close()


def main(settings_path: str) -> int:
    with open(settings_path) as file:
        settings = json.load(file)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for cidr in settings["local_cidrs"]:
        subprocess.run(["ip", "route", "add", "local", cidr, "dev", "lo"], check=True)
    subprocess.run(["mount", "--bind", settings["hosts"], "/etc/hosts"], check=True)
    daemons = [(to_the_host, (settings["apiserver_port"], settings["apiserver_socket"])), (dialer, (settings["dial_socket"],))]
    daemons += [(to_the_head, (int(port), path, settings["answering"])) for port, path in settings["head_sockets"].items()]
    for target, args in daemons:
        threading.Thread(target=target, args=args, daemon=True).start()
    operator = subprocess.Popen(settings["argv"], env={**os.environ, **settings["env"]})
    signal.signal(signal.SIGTERM, lambda *_: operator.terminate())
    while operator.poll() is None:
        try:
            with urllib.request.urlopen(settings["readyz"], timeout=2) as answer:
                if answer.read() == b"ok":
                    open(settings["ready"], "w").close()
                    break
        except OSError:
            pass
        time.sleep(0.25)
    return operator.wait()


if __name__ == "__main__":
    if sys.argv[1] == "relay":
        relay(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main(sys.argv[1]))
