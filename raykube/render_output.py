"""Where `raykube render` may write: a new or empty folder, or one it wrote before.

A render folder holds a marker file listing the files the render wrote. The
next render into it replaces those (and drops those the new render no longer
has); anything else in the folder is the user's and stays. A folder that is
not empty and has no marker is refused, and so are the working folder, the
project folder, home and their parents: `--out .` must never cost anyone a file.

The marker is only a list; render judges every line itself before it deletes
or replaces anything. renders/ is committed, so any pull request can edit a
marker (and the preview workflow renders pull requests): a listed path counts
only if it lies inside the folder, is named as render names its files
(RENDER_NAME) and reaches no symlink on the way. One line that does not is
refused before anything is touched. Nothing outside the folder is ever
deleted: not a listed file, not an emptied parent folder.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

MARKER = ".raykube-render"
MARKER_HEADER = "# Written by `raykube render`; it replaces the files listed here and nothing else.\n"

# The only names render gives files (raykube/cli/render.py, _relative_path): a
# component is what _safe() leaves ([A-Za-z0-9_.-]+), never "." or "..".
_PART = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.-]+"
RENDER_NAME = re.compile(
    rf"^(?:outputs\.yaml|(?:helm|manifests|dynamic|aws)/{_PART}\.yaml|kubernetes/{_PART}/{_PART}\.yaml|files/{_PART})$"
)
# Kernel file systems: their "files" are switches (as root, a write under /sys
# changes the running machine), never a place for a render.
KERNEL_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


class RenderOutputError(Exception):
    """The folder is not raykube's to write."""


def _shown(path: Path | str) -> str:
    """A path as one readable line of an error (a 5,000-character --out stays readable)."""
    text = str(path)
    return text if len(text) <= 160 else f"{text[:80]}...{text[-60:]}"


def _symlink_on_the_way(folder: Path, relative: str) -> str | None:
    """The first part of folder/relative that is a symlink (a write there would land elsewhere)."""
    current = folder
    for part in relative.split("/"):
        current = current / part
        if current.is_symlink():
            return str(current.relative_to(folder))
    return None


def _owned(folder: Path) -> set[str]:
    """The marker's paths, each judged here; RenderOutputError for the first one render would not have written."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        raise RenderOutputError(f"--out {_shown(folder)}: {MARKER} is not a file render wrote (a symlink or a folder); nothing was deleted")
    try:
        lines = marker.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise RenderOutputError(f"--out {_shown(folder)}: {MARKER} is not text render wrote; nothing was deleted") from None
    owned = set()
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.startswith("/") or os.path.isabs(line) or ".." in line.split("/"):
            why = "outside the folder"
        elif not RENDER_NAME.match(line):
            why = "not a name raykube render gives its files"
        elif _symlink_on_the_way(folder, line):
            why = f"reached through the symlink {_symlink_on_the_way(folder, line)}"
        else:
            owned.add(line)
            continue
        raise RenderOutputError(
            f"--out {_shown(folder)}: {MARKER} lists {line[:120]!r}, {why}; refusing to delete or replace anything "
            f"(restore {MARKER} from git, or delete the folder and render again)"
        )
    return owned


def _nearest_existing(folder: Path) -> Path:
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            return place
    return Path("/")


def _check(folder: Path, project_root: Path) -> set[str]:
    real = Path(os.path.realpath(folder))
    for kernel in KERNEL_FOLDERS:
        if kernel in (folder, real) or kernel in folder.parents or kernel in real.parents:
            raise RenderOutputError(f"--out {_shown(folder)} is under {kernel}, a kernel file system, not a place for files; give a folder of its own, e.g. --out render")
    protected = {Path.cwd().resolve(), project_root.resolve(), Path.home().resolve()}
    if any(real == place or real in place.parents for place in protected):
        raise RenderOutputError(f"--out {_shown(folder)}: refusing to render into the working, project or home folder (or a parent of one); give a folder of its own, e.g. --out render")
    # The folder itself, and any folder between the project and it (renders/ is
    # committed: a pull request can make renders/gke a symlink to components/).
    project = Path(os.path.abspath(project_root))
    inside = [place for place in (folder, *folder.parents) if place != project and project in place.parents]
    for place in [folder] + inside:
        if place.is_symlink():
            raise RenderOutputError(f"--out {_shown(folder)}: {_shown(place)} is a symlink; render writes only into a real folder, give its target instead")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise RenderOutputError(f"--out {_shown(folder)}: {_shown(existing)} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RenderOutputError(f"--out {_shown(folder)}: {_shown(existing)} is not writable (a read-only file system, or its permissions)")
    if existing != folder:
        return set()
    if os.path.lexists(folder / MARKER):
        return _owned(folder)
    foreign = sorted(path.name for path in folder.iterdir())
    if foreign:
        raise RenderOutputError(
            f"--out {_shown(folder)} holds files raykube render did not write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
            "give an empty or new folder"
        )
    return set()


def _absolute(folder: Path) -> Path:
    # Absolute without following symlinks: a symlinked --out must be seen to be refused.
    return Path(os.path.abspath(folder))


def check_output_folder(folder: Path, project_root: Path) -> set[str]:
    """The files a previous render wrote into `folder` (empty for a new one), or RenderOutputError."""
    try:
        return _check(_absolute(folder), project_root)
    except (OSError, ValueError) as error:  # too long a name, an embedded NUL byte, a vanished folder
        raise RenderOutputError(f"--out {_shown(folder)}: {getattr(error, 'strerror', None) or error}") from None


def write_render(folder: Path, files: dict[str, str], project_root: Path) -> None:
    """Replace the previous render in `folder` with `files` ({relative path: text})."""
    folder = _absolute(folder)
    previous = check_output_folder(folder, project_root)
    for relative in sorted(files):
        if not RENDER_NAME.match(relative):  # render's own names always match: a bug, never a deletion
            raise RenderOutputError(f"--out {_shown(folder)}: render made the file name {relative!r}, which it does not own; nothing was written")
        through = _symlink_on_the_way(folder, relative)
        if through:
            raise RenderOutputError(f"--out {_shown(folder)}: {through} is a symlink; render writes only real files in its folder, move it away first")
        if relative not in previous and os.path.lexists(folder / relative):
            raise RenderOutputError(f"--out {_shown(folder)}: {relative} exists and raykube render did not write it; move it away first")
    stale = sorted(previous - set(files))
    relative = MARKER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Everything this run may leave behind is listed before it is written:
        # an interrupted render (full disk) is still render's to replace.
        _write_marker(folder, previous | set(files))
        for relative, text in sorted(files.items()):
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, text)
        for relative in stale:
            target = folder / relative
            if target.is_file() and not target.is_symlink():
                target.unlink()
            # An emptied subfolder render made (kubernetes/<old namespace>) goes; the folder itself and its parents stay.
            sub = target.parent
            if sub != folder and folder in sub.parents and sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        relative = MARKER
        _write_marker(folder, set(files))
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.EROFS:
            reason = "a read-only file system"
        raise RenderOutputError(f"--out {_shown(folder)}: cannot write {relative}: {reason}") from None


def _write(target: Path, text: str) -> None:
    # O_NOFOLLOW: a symlink put in place after the checks above still fails the write (ELOOP), never redirects it.
    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)


def _write_marker(folder: Path, names: set[str]) -> None:
    _write(folder / MARKER, MARKER_HEADER + "".join(f"{relative}\n" for relative in sorted(names)))
