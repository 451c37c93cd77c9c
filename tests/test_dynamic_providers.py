"""raykube's dynamic providers load in Pulumi's provider process, wherever it runs."""
from __future__ import annotations

import subprocess
import sys

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.assumed_role_credentials import AssumedRoleCredentialsProvider
from components.local_file import LocalFileProvider, _write


@pytest.mark.parametrize("provider", [AssumedRoleCredentialsProvider(), LocalFileProvider()], ids=lambda p: type(p).__name__)
def test_serialized_provider_loads_outside_the_project_directory(provider, tmp_path):
    # Pulumi stores the provider pickled (dill); its provider process unpickles it.
    blob = serialize_provider(provider)
    code = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "print(type(provider).__name__, provider.diff('id', {'path': 'a', 'content': 'x', 'role_arn': 'r'}, "
        "{'path': 'a', 'content': 'y', 'role_arn': 'r'}).changes)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=blob, cwd="/", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == type(provider).__name__
    assert done.stdout.split()[1] == "True"


def test_local_file_provider_writes_updates_and_removes(tmp_path):
    provider = LocalFileProvider()
    path = str(tmp_path / "sub" / "kubeadm-config.yaml")
    created = provider.create({"path": path, "content": "a: 1\n"})
    assert (tmp_path / "sub" / "kubeadm-config.yaml").read_text() == "a: 1\n"
    assert provider.diff(created.id, created.outs, {"path": path, "content": "a: 1\n"}).changes is False
    assert provider.diff(created.id, created.outs, {"path": path, "content": "a: 2\n"}).changes is True
    provider.update(created.id, created.outs, {"path": path, "content": "a: 2\n"})
    assert (tmp_path / "sub" / "kubeadm-config.yaml").read_text() == "a: 2\n"
    provider.delete(created.id, _write(path, "a: 2\n"))
    assert not (tmp_path / "sub" / "kubeadm-config.yaml").exists()
