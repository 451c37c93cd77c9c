"""Entry point of `pulumi up`: settings, then the composition, then exports."""
from __future__ import annotations

import pulumi

from raykube.composition import build
from raykube.settings import load_settings


def main() -> None:
    settings = load_settings()  # raises SettingsError (no traceback) before any resource
    for key, value in build(settings).outputs.items():
        pulumi.export(key, value)
