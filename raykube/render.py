"""`python -m raykube.render`: the offline render (raykube/cli/render.py), under the name that
crontabs, systemd units, CI scripts and the before-stop checks already call."""
from raykube.cli.render import RENDERS, main, render, stack_names

__all__ = ['RENDERS', 'main', 'render', 'stack_names']


if __name__ == "__main__":
    import os
    import sys

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: the mocks' event loop complains while closing
