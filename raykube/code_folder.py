"""Which files of a `rayJobs[].code` folder a job's archive holds, and whether that folder may be uploaded.

The folder must lie inside the project (relative to it, no way out through
`..`, an absolute path or a symlink): `pulumi up` uploads it to a bucket the
Ray pods read, so a path outside the project would ship whatever lies there.

Its files are taken as git would commit them: `.git`, virtualenvs (any folder
holding a pyvenv.cfg, whatever its name), byte-code and tool caches are always
left out, and so is whatever the project's .gitignore files exclude (the one
at the project root, those between it and the folder, and those inside it),
matched with pathspec's implementation of git's rules. `code: .` therefore
uploads the project's sources, not its 870 MB virtualenv.

What is left must fit MAX_CODE_BYTES (before compression): every Ray node
downloads and unpacks the archive before the job starts, and data belongs in
the bucket (read from there by the job), not in its code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

MAX_CODE_BYTES = 100 * 1024 * 1024  # 100 MiB; docs/jobs.md and docs/settings.md say so

# Left out of every archive, whatever the .gitignore says: git's own folder,
# byte-code, the caches of tools and editors.
ALWAYS_EXCLUDED = (
    ".git/", "__pycache__/", "*.py[cod]", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".tox/", ".nox/",
    ".ipynb_checkpoints/", ".venv/", "venv/", ".DS_Store",
)
# A folder holding one of these is a Python environment, whatever its name.
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")


class CodeFolderError(ValueError):
    """The folder cannot be a job's code; the message says why in one line."""


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def project_folder(code: str, project: Path) -> Path:
    """`code` as a folder inside `project` (resolved), or CodeFolderError."""
    if not code.strip():
        raise CodeFolderError("must name a folder of the project, e.g. examples/wine_shap")
    if os.path.isabs(code):
        raise CodeFolderError(f"{code!r} is an absolute path; give a folder of the project relative to it (e.g. examples/wine_shap)")
    root = project.resolve()
    try:
        folder = (root / code).resolve()
    except (OSError, RuntimeError, ValueError) as error:  # a symlink loop, too long a name
        raise CodeFolderError(f"{code!r} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    if folder != root and root not in folder.parents:
        # `..`, or a symlink leading out: either way, files that are not the project's.
        raise CodeFolderError(f"{code!r} leads outside the project folder {root}; a job's code is a folder of the project")
    if not folder.is_dir():
        raise CodeFolderError(f"{code!r} is not a folder (relative to the project folder {root})")
    return folder


class _Ignores:
    """git's exclusion rules for one walk: always-excluded names, then each .gitignore from the root down."""

    def __init__(self, root: Path):
        from pathspec import GitIgnoreSpec

        self._spec = GitIgnoreSpec
        self.rules: list[tuple[Path, object]] = [(root, GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED))]

    def add(self, folder: Path) -> None:
        ignore = folder / ".gitignore"
        if ignore.is_file() and not ignore.is_symlink():
            lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
            self.rules.append((folder, self._spec.from_lines(lines)))

    def excluded(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.rules:  # shallow to deep: a deeper .gitignore has the last word, as in git
            if base != path and base not in path.parents:
                continue
            relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            result = spec.check_file(relative)
            if result.include is not None:
                verdict = result.include
        return verdict


def _walk(folder: Path, project: Optional[Path]) -> Iterator[tuple[Path, int]]:
    """(path relative to the folder, size) of every file an archive holds."""
    root = project.resolve() if project is not None else None
    start = folder.resolve()
    base = root if root is not None and (start == root or root in start.parents) else start
    ignores = _Ignores(base)
    # The .gitignore files between the project root and the folder apply to it too.
    for ancestor in reversed([start, *start.parents]):
        if ancestor == base or base in ancestor.parents:
            ignores.add(ancestor)
    for current, dirs, files in os.walk(start, followlinks=False):
        here = Path(current)
        if here != start:
            ignores.add(here)
        kept = []
        for name in sorted(dirs):
            path = here / name
            if ignores.excluded(path, is_dir=True) or any((path / marker).exists() for marker in ENVIRONMENT_MARKERS):
                continue  # not descended into: an excluded virtualenv costs nothing
            if path.is_symlink():
                raise CodeFolderError(f"{path.relative_to(start)} in the code folder is a symlink; archives hold files only: copy it in or exclude it in .gitignore")
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            if ignores.excluded(path, is_dir=False):
                continue
            if path.is_symlink():
                raise CodeFolderError(f"{path.relative_to(start)} in the code folder is a symlink; archives hold files only: copy it in or exclude it in .gitignore")
            yield path.relative_to(start), path.lstat().st_size


def code_files(folder: Path, project: Optional[Path] = None, limit: int = MAX_CODE_BYTES, shown: Optional[str] = None) -> list[Path]:
    """The files a job's archive holds, sorted; CodeFolderError above `limit` bytes (the walk stops there).

    `project` (default: the working folder, where `pulumi up` runs) is where the
    .gitignore rules start when the folder lies inside it.
    """
    folder = Path(folder)
    total, files = 0, []
    walk = _walk(folder, Path.cwd() if project is None else project)
    for relative, size in walk:
        total += size
        if total > limit:
            # Go on counting (sizes only, a bounded number of files) so the error names the real size.
            counted = 0
            for counted, (_relative, more) in enumerate(walk, 1):
                total += more
                if counted >= 200_000:
                    break
            at_least = "at least " if counted >= 200_000 else ""
            raise CodeFolderError(
                f"{shown or folder} holds {at_least}{_size(total)} to upload after .gitignore exclusions; the limit is {_size(limit)}: "
                "exclude what the job does not need in .gitignore, and put data in the bucket"
            )
        files.append(folder / relative)  # spelled as given: the render shows project-relative paths, not this machine's
    return sorted(files)


def check_code_folder(code: str, project: Path) -> Path:
    """`code` resolved inside `project`, its archive within the limit; CodeFolderError otherwise."""
    folder = project_folder(code, project)
    try:
        code_files(folder, project, shown=repr(code))
    except OSError as error:
        raise CodeFolderError(f"{code!r} cannot be read: {error.strerror or error}") from None
    return folder
