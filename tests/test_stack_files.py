"""A stack file raykube cannot read as the user meant is refused, with one line naming the file:
each of these used to render (and `pulumi up` would deploy) the default local stack, or silently
take the last of two values."""
from __future__ import annotations

from pathlib import Path

import pytest

from raykube.stack_file import StackFileError, read_stack_file
from tests.helpers.program import ROOT, run_program


def refusal(tmp_path: Path, text: str | bytes, stack: str | None = None) -> str:
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(StackFileError) as raised:
        read_stack_file(stack, path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_misspelled_namespace_is_refused_naming_the_key(tmp_path):
    message = refusal(tmp_path, "config:\n  raycube:target: eks\n")
    assert "'raycube:target'" in message and "did you mean raykube:target" in message


def test_the_program_itself_refuses_a_key_in_no_namespace_it_reads():
    """`pulumi up` reads config through Pulumi, not through raykube's stack-file reader."""
    from raykube.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        run_program({"raycube:target": "eks", "raykube:target": "local"})
    assert raised.value.keys == ["raycube:target"]


def test_settings_at_the_top_level_are_refused(tmp_path):
    """Keys not under `config:` are read by nobody: the stack would be the defaults."""
    message = refusal(tmp_path, "raykube:target: eks\n")
    assert "'raykube:target'" in message and "under `config:`" in message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "config:\n", "secretsprovider: passphrase\n"])
def test_an_empty_file_or_no_config_mapping_is_refused(tmp_path, text):
    assert "config" in refusal(tmp_path, text)


def test_dev_null_is_not_a_stack_file():
    with pytest.raises(StackFileError) as raised:
        read_stack_file(None, Path("/dev/null"))
    assert "/dev/null" in str(raised.value)


@pytest.mark.parametrize("text, key, lines", [
    ("config:\n  raykube:target: eks\n  raykube:target: gke\n", "raykube:target", "lines 2 and 3"),
    ("config:\n  raykube:awsAccess:\n    mode: irsa\n    region: a\n    mode: none\n", "mode", "lines 3 and 5"),
    ("config:\n  raykube:rayClusters:\n    - name: a\n      name: b\n", "name", "lines 3 and 4"),
    ("config:\n  raykube:target: eks\nconfig:\n  raykube:target: gke\n", "config", "lines 1 and 3"),
])
def test_a_key_written_twice_at_any_level_is_refused(tmp_path, text, key, lines):
    message = refusal(tmp_path, text)
    assert repr(key) in message and lines in message


def test_merge_keys_may_override_what_they_merge(tmp_path):
    """`<<: *defaults` then a key of its own is YAML's way to override, not a key written twice."""
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_text("config:\n  raykube:target: local\n  raykube:autoscaling:\n    <<: {syncPeriodSeconds: 15}\n    syncPeriodSeconds: 30\n")
    assert read_stack_file(None, path).config["raykube:autoscaling"] == '{"syncPeriodSeconds": 30}'


def test_stack_and_config_naming_different_stacks_are_refused():
    with pytest.raises(StackFileError) as raised:
        read_stack_file("local", ROOT / "stacks" / "Pulumi.eks.yaml")
    assert "--stack local" in str(raised.value) and "Pulumi.eks.yaml" in str(raised.value)
    # Naming the same stack twice is agreement, not a conflict.
    assert read_stack_file("eks", ROOT / "stacks" / "Pulumi.eks.yaml").stack == "eks"
