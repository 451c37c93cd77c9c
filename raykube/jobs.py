"""`python -m raykube.jobs`: Ray jobs on a stack's cluster (raykube/cli/jobs.py), under the name that
crontabs, systemd units, CI scripts and the before-stop checks already call."""
from raykube.cli.jobs import main

__all__ = ['main']


if __name__ == "__main__":
    import sys

    sys.exit(main())
