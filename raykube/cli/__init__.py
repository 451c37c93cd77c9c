"""`raykube`: one command for raykube's tools.

  raykube render       the offline render of a stack (python -m raykube.render)
  raykube jobs         Ray jobs on a stack's cluster (python -m raykube.jobs)
  raykube credentials  renew or check the Ray pods' AWS credentials (python -m raykube.credentials)
  raykube status       is every Ray cluster of a stack ready, and if not, why (python -m raykube.status)

The commands live in raykube/cli/<command>.py; they share raykube/stack_file.py
(reading a stack file) and raykube/cluster_api.py (talking to its cluster), and
never import each other.

`raykube <command> --help` for each.
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional

COMMANDS = {
    "render": ("raykube.cli.render", "the offline render of a stack"),
    "jobs": ("raykube.cli.jobs", "Ray jobs on a stack's cluster"),
    "credentials": ("raykube.cli.credentials", "renew or check the Ray pods' AWS credentials"),
    "status": ("raykube.cli.status", "is every Ray cluster of a stack ready, and if not, why"),
}


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"raykube: unknown command {command!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    # Each tool's own parser, with `raykube <command>` as its name in messages.
    sys.argv[0] = f"raykube {command}"
    return module.main(rest) or 0


def run() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.argv[1:2] == ["render"]:
        import os

        os._exit(code)  # as `python -m raykube.render`: skip the mocks' noisy teardown
    sys.exit(code)
