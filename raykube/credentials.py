"""`python -m raykube.credentials`: renew or check the Ray pods' AWS credentials (raykube/cli/credentials.py), under the name that
crontabs, systemd units, CI scripts and the before-stop checks already call."""
from raykube.cli.credentials import main

__all__ = ['main']


if __name__ == "__main__":
    import sys

    sys.exit(main())
