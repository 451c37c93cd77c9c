"""Where `raykube render` may write: a new or empty folder, or one it wrote before.

A render folder holds a marker file listing the files the render wrote. The
next render into it replaces exactly those (and drops those the new render no
longer has); anything else in the folder is the user's and stays. A folder
that is not empty and has no marker is refused, and so are the working folder,
the project folder and their parents: `--out .` must never cost anyone a file.
"""
from __future__ import annotations

from pathlib import Path

MARKER = ".raykube-render"
MARKER_HEADER = "# Written by `raykube render`; it replaces the files listed here and nothing else.\n"


class RenderOutputError(Exception):
    """The folder is not raykube's to write."""


def _owned(folder: Path) -> set[str]:
    marker = folder / MARKER
    lines = marker.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def check_output_folder(folder: Path, project_root: Path) -> set[str]:
    """The files a previous render wrote into `folder` (empty for a new one), or RenderOutputError."""
    folder = folder.resolve()
    protected = {Path.cwd().resolve(), project_root.resolve(), Path.home().resolve()}
    if any(folder == place or folder in place.parents for place in protected):
        raise RenderOutputError(f"--out {folder}: refusing to render into the working, project or home folder (or a parent of one); give a folder of its own, e.g. --out render")
    if not folder.exists():
        return set()
    if not folder.is_dir():
        raise RenderOutputError(f"--out {folder} is a file, not a folder")
    if (folder / MARKER).is_file():
        return _owned(folder)
    foreign = sorted(path.name for path in folder.iterdir())
    if foreign:
        raise RenderOutputError(
            f"--out {folder} holds files raykube render did not write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
            "give an empty or new folder"
        )
    return set()


def write_render(folder: Path, files: dict[str, str], project_root: Path) -> None:
    """Replace the previous render in `folder` with `files` ({relative path: text})."""
    previous = check_output_folder(folder, project_root)
    for relative in sorted(files):
        target = folder / relative
        if relative not in previous and target.exists():
            raise RenderOutputError(f"--out {folder}: {relative} exists and raykube render did not write it; move it away first")
    for relative in sorted(previous - set(files)):
        stale = folder / relative
        if stale.is_file():
            stale.unlink()
        for parent in stale.parents:
            if parent == folder or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    for relative, text in sorted(files.items()):
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (folder / MARKER).write_text(MARKER_HEADER + "".join(f"{relative}\n" for relative in sorted(files)), encoding="utf-8")
