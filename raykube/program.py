"""Entry point of `pulumi up`: settings, then the composition, then exports."""
from __future__ import annotations

from pathlib import Path

import pulumi

from raykube.composition import build
from raykube.settings import load_settings


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    pulumi.log.info(f"wrote {target}")


def main() -> None:
    settings = load_settings()  # raises SettingsError (no traceback) before any resource
    result = build(settings)
    for key, value in result.outputs.items():
        pulumi.export(key, value)
    # Files such as the kubeadm config are written on `pulumi up`, never on preview.
    if not pulumi.runtime.is_dry_run():
        for path, text in result.files.items():
            pulumi.Output.from_input(text).apply(lambda value, path=path: _write(path, value))
