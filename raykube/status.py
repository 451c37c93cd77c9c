"""`python -m raykube.status`: the readiness of a stack's Ray clusters (raykube/cli/status.py),
by module name like raykube's other commands."""
from raykube.cli.status import main

__all__ = ['main']


if __name__ == "__main__":
    import sys

    sys.exit(main())
