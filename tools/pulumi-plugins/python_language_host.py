"""Pulumi's LanguageRuntime for `runtime: python`, served for the CLI (see pulumi-language-python
beside this file for why this stand-in exists).

What the CLI needs from a language plugin (sdk/go/common/resource/plugin/ in pulumi/pulumi):
it starts the host with its flags and the engine's address last, reads the port from the
first line of stdout, and traces the rest of stdout and stderr into its own output. For
`up`/`preview`/`destroy` it calls GetRequiredPackages, then Run; for a plugin folder
(PulumiPlugin.yaml, e.g. `pulumi package get-schema ./components`) RunPlugin, which streams
the plugin's stdout, stderr and exit code back.

As the real host does, a program and a plugin each run in a child process with the Python of
the virtualenv their Pulumi.yaml or PulumiPlugin.yaml names, in the folder the CLI says: the
program through the Pulumi SDK's own inline-program server (python_program.py), a plugin as
`python <plugin folder> <args>`. The child's output goes to this host's stdout and stderr,
which the CLI shows, as the real host's does.
"""
from __future__ import annotations

import importlib.metadata
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

HERE = Path(__file__).resolve().parent
PROGRAM_RUNNER = HERE / "python_program.py"


class VirtualenvError(Exception):
    """The virtualenv a Pulumi.yaml or PulumiPlugin.yaml names is not there."""


def virtualenv_python(info: language_pb2.ProgramInfo, is_plugin: bool) -> str:
    """The Python a program or plugin runs with: its `virtualenv` option, relative to its root.

    Plugins default to `venv`, as in the real host. Where the folder has no such virtualenv, the
    nearest enclosing folder's is used: the README's install command makes one virtualenv at the
    repository's root, while the real host would make components/venv on `pulumi install`.
    """
    options = json_format.MessageToDict(info.options) if info.HasField("options") else {}
    virtualenv = options.get("virtualenv") or ("venv" if is_plugin and options.get("toolchain", "pip") == "pip" else "")
    if not virtualenv:
        return "python3"
    root = Path(info.root_directory or info.program_directory or os.getcwd())
    candidates = [Path(virtualenv)] if os.path.isabs(virtualenv) else [folder / virtualenv for folder in (root, *root.parents)]
    for candidate in candidates:
        if (candidate / "pyvenv.cfg").is_file() and os.access(candidate / "bin" / "python", os.X_OK):
            return str(candidate / "bin" / "python")
    raise VirtualenvError(
        f"The 'virtualenv' option is set to {virtualenv!r}, but {candidates[0]} is not a virtual environment "
        f"(nor is {virtualenv!r} in a folder above {root}); create it with the README's install command"
    )


def activated(environment: dict[str, str], python: str) -> dict[str, str]:
    """The environment with the virtualenv of `python` activated, as the real host runs a child."""
    environment = dict(environment)
    if python != "python3":
        venv = Path(python).parent.parent
        environment["VIRTUAL_ENV"] = str(venv)
        environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
        environment.pop("PYTHONHOME", None)
    return environment


class PythonLanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str) -> None:
        self.engine_address = engine_address
        self.children: set[subprocess.Popen] = set()
        self.lock = threading.Lock()

    def _start(self, *args, **kwargs) -> subprocess.Popen:
        child = subprocess.Popen(*args, **kwargs)
        with self.lock:
            self.children.add(child)
        return child

    def _forget(self, child: subprocess.Popen) -> None:
        with self.lock:
            self.children.discard(child)

    def Handshake(self, request, context):
        # Only when the CLI attaches to a running host (PULUMI_DEBUG_LANGUAGES).
        self.engine_address = request.engine_address or self.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=importlib.metadata.version("pulumi"))

    def GetRequiredPlugins(self, request, context):
        # Providers load on demand when the program registers their resources.
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request, context):
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(self, request, context):
        # The README's install command makes the virtualenv; here only check that it is there.
        try:
            python = virtualenv_python(request.info, request.is_plugin)
        except VirtualenvError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        yield language_pb2.InstallDependenciesResponse(stdout=f"Using the virtualenv of {python}\n".encode())

    def About(self, request, context):
        python = self._python_or_abort(request.info, False, context)
        version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        return language_pb2.AboutResponse(executable=python, version=version)

    def GetProgramDependencies(self, request, context):
        python = self._python_or_abort(request.info, False, context)
        listed = subprocess.run(
            [python, "-c", "import importlib.metadata as m\n"
                           "for d in m.distributions(): print(d.metadata['Name'], d.version)"],
            capture_output=True, text=True, check=False).stdout
        dependencies = [language_pb2.DependencyInfo(name=name, version=version)
                        for name, version in sorted(line.split(" ", 1) for line in listed.splitlines() if " " in line)]
        return language_pb2.GetProgramDependenciesResponse(dependencies=dependencies)

    def _python_or_abort(self, info, is_plugin: bool, context) -> str:
        try:
            return virtualenv_python(info, is_plugin)
        except VirtualenvError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))

    def Run(self, request, context):
        try:
            python = virtualenv_python(request.info, False)
        except VirtualenvError as error:
            return language_pb2.RunResponse(error=str(error))
        with tempfile.TemporaryDirectory(prefix="pulumi-python-run-") as scratch:
            request_file, response_file = Path(scratch) / "request", Path(scratch) / "response"
            request_file.write_bytes(request.SerializeToString())
            child = self._start(
                [python, "-u", str(PROGRAM_RUNNER), str(request_file), str(response_file), self.engine_address],
                cwd=request.pwd or request.info.program_directory or None,
                env=activated(os.environ, python),
            )
            context.add_callback(lambda: child.poll() is None and child.send_signal(signal.SIGINT))
            code = child.wait()
            self._forget(child)
            if response_file.exists():
                response = language_pb2.RunResponse.FromString(response_file.read_bytes())
                # The SDK's server has logged the error (with its traceback) to the engine already: bail, as the real
                # host does after a user-actionable message, rather than have the CLI print it twice.
                return language_pb2.RunResponse(bail=True) if response.error else response
        return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {code}")

    def RunPlugin(self, request, context):
        try:
            python = virtualenv_python(request.info, request.kind != "analyzer")
        except VirtualenvError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        environment = activated(os.environ, python)
        environment.update(entry.split("=", 1) for entry in request.env if "=" in entry)
        child = self._start(
            [python, request.info.program_directory, *request.args],
            cwd=request.pwd or None, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        context.add_callback(lambda: child.poll() is None and child.kill())
        chunks: queue.Queue = queue.Queue()

        def pump(stream, field: str) -> None:
            # Raw reads, not lines: the plugin's port line reaches the CLI as soon as it is written.
            while chunk := os.read(stream.fileno(), 65536):
                chunks.put((field, chunk))
            chunks.put((field, None))

        for stream, field in ((child.stdout, "stdout"), (child.stderr, "stderr")):
            threading.Thread(target=pump, args=(stream, field), daemon=True).start()
        open_streams = 2
        while open_streams:
            field, chunk = chunks.get()
            if chunk is None:
                open_streams -= 1
            else:
                yield language_pb2.RunPluginResponse(**{field: chunk})
        code = child.wait()
        self._forget(child)
        yield language_pb2.RunPluginResponse(exitcode=code)

    def Cancel(self, request, context):
        with self.lock:
            for child in self.children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
        return empty_pb2.Empty()


def exit_with_the_cli() -> None:
    """The real host stops when the engine goes away; here, when the CLI that started it does."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def main(argv: list[str]) -> None:
    # The CLI's flags (-tracing, -v, --logtostderr...) come first; the engine's address is last.
    engine_address = argv[-1] if argv and not argv[-1].startswith("-") else ""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=_GRPC_CHANNEL_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(PythonLanguageHost(engine_address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    threading.Thread(target=exit_with_the_cli, daemon=True).start()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:  # how the CLI stops a language host when it is done with it
        server.stop(grace=None)


if __name__ == "__main__":
    main(sys.argv[1:])
