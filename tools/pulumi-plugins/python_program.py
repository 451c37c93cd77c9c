"""Runs a Pulumi Python program for the stand-in language host (python_language_host.py), under the
Python of the program's virtualenv, in the folder the CLI says.

The run itself is the Pulumi SDK's: its Automation API inline-program server
(pulumi.automation._server.LanguageServer) configures the runtime from the CLI's RunRequest
(monitor, engine, project, stack, config and secret keys, dry run, parallelism), runs the
program in a stack and turns a failure into the RunResponse's error. The program is the
project's entry point (Pulumi.yaml `main`, default `__main__.py`) run as `__main__`.

Usage: python python_program.py REQUEST_FILE RESPONSE_FILE ENGINE_ADDRESS
"""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from pulumi.automation._server import LanguageServer
from pulumi.runtime.proto import language_pb2


def entry_point(request: language_pb2.RunRequest) -> Path:
    program_directory = Path(request.info.program_directory or request.pwd or os.getcwd())
    entry = program_directory / (request.info.entry_point or request.program or ".")
    return entry / "__main__.py" if entry.is_dir() else entry


def main(request_file: str, response_file: str, engine_address: str) -> None:
    request = language_pb2.RunRequest.FromString(Path(request_file).read_bytes())
    program = entry_point(request)
    program_args = list(request.args)

    def run_program() -> None:
        if not program.is_file():
            raise RuntimeError(f"unable to find the main Python program {program}")
        sys.path[0] = str(program.parent)  # as `python __main__.py` has it, not this runner's folder
        sys.argv = [str(program), *program_args]
        runpy.run_path(str(program), run_name="__main__")

    # The inline server reads the engine's address from the request's first argument.
    del request.args[:]
    request.args.extend([engine_address])
    response = LanguageServer(run_program).Run(request, None)
    Path(response_file).write_bytes(response.SerializeToString())


if __name__ == "__main__":
    main(*sys.argv[1:4])
