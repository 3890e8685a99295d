"""Atomic file and folder writes, output-location checks, stale temporaries, content hashes.

Everything monalisa writes goes through here: a temporary name in the same folder, then
``os.replace``, so a crash or a kill never leaves a half-written file under the final name.
Temporaries are named ``.NAME.~PID@HOST~XXXX.tmp``; :func:`remove_stale_temps` removes the ones
whose process is gone, so the next run of a killed command cleans up after it.

:func:`check_out_dir` / :func:`check_out_file` are the one guard every command runs on its output
location before any work: a path it cannot write, a file where a folder is expected (or the
reverse), or a folder holding files monalisa did not write (unless ``--overwrite``) is refused with
one line (exit 2). Folders written with ``atomic_dir(path, ours=...)`` never lose an entry that
does not match ``ours``: what monalisa did not write stays.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from monalisa.errors import InputError

#: the pid/host tag of this process's temporaries
_TAG_RX = re.compile(r"^\..+\.~(\d+)@([^~/]+)~[A-Za-z0-9_]+\.tmp$")


def _tag() -> str:
    return f"~{os.getpid()}@{socket.gethostname() or 'host'}~"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_tag()}", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; finished files get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def matches(name: str, ours) -> bool:
    """Whether an entry ``name`` is one monalisa writes: it matches a glob of ``ours`` or is a hidden
    temporary of one (``.NAME.*.tmp``, ``.NAME.old``)."""
    if any(fnmatch.fnmatchcase(name, pat) for pat in ours):
        return True
    if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".old")):
        inner = name[1:].rsplit(".", 1)[0]
        return any(fnmatch.fnmatchcase(inner, pat) or fnmatch.fnmatchcase(inner, pat + ".*") for pat in ours)
    return False


def foreign_entries(folder, ours) -> list[str]:
    """Names in ``folder`` that monalisa did not write (sorted); [] for a missing folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not matches(p.name, ours))


def temp_dir(folder, name: str) -> Path:
    """A new empty folder ``folder/.NAME.~PID@HOST~XXXX.tmp`` (usual permissions), tagged with this
    process: :func:`remove_stale_temps` removes it once the process is gone."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.{_tag()}", suffix=".tmp", dir=folder))
    tmp.chmod(0o777 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_dir(path, ours=None, replace: bool = True):
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    ``ours``: glob patterns of the entries monalisa writes in ``path``. Entries of an existing
    ``path`` that match none of them are kept: the new entries are then moved in one by one
    (each atomically) and only stale entries of ours are removed. Without ``ours`` (or when every
    existing entry is ours) the whole folder is swapped. An existing *file* at ``path`` is refused.
    With ``replace=False`` the folder is only ever created, never swapped or merged: when ``path``
    exists by then, OSError (a non-empty folder is never replaced).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is a file, not a folder; choose another output folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(path.parent, path.name)
    try:
        yield tmp
        for item in tmp.rglob("*"):  # some writers (safetensors) create 0600 files
            if item.is_file() and not item.is_symlink() and item.stat().st_nlink == 1:  # a hard link is also another's
                item.chmod(0o666 & ~_umask())
        if not replace:
            os.rename(tmp, path)  # fails on an existing non-empty folder or a file
        elif path.exists() and ours is not None and foreign_entries(path, ours):
            _merge_into(tmp, path, ours)
        elif path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _merge_into(tmp: Path, path: Path, ours) -> None:
    """Move ``tmp``'s entries into ``path`` (replacing ours of the same name), drop stale ones of ours."""
    new = {p.name for p in tmp.iterdir()}
    for entry in path.iterdir():
        if entry.name not in new and matches(entry.name, ours) and not entry.name.startswith("."):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name in sorted(new):
        src, dst = tmp / name, path / name
        if dst.is_dir() and not dst.is_symlink():
            old = path / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
            os.replace(src, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(src, dst)


def remove_stale_temps(folder, name: str | None = None) -> list[Path]:
    """Remove the temporaries (``.NAME.~PID@HOST~XXXX.tmp``) a killed monalisa process left in
    ``folder`` (only those of ``name`` when given). A temporary of a process still running on this
    host, or of another host, is left alone. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed = socket.gethostname() or "host", []
    for entry in folder.iterdir():
        if name is not None and not entry.name.startswith(f".{name}."):
            continue
        m = _TAG_RX.match(entry.name)
        if m is None or m.group(2) != host or _alive(int(m.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    """Is process ``pid`` running here? A zombie (killed, not yet reaped) is not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _nearest_existing(path: Path) -> Path:
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_writable(path: Path, flag: str, what: str) -> None:
    """InputError unless ``path`` (or, when missing, the folder that would hold it) can be written."""
    base = _nearest_existing(path.parent if path.is_file() else path)
    if not base.is_dir():
        raise InputError(f"{path}: {base} is a file, not a folder, so nothing can be written below it; "
                         f"choose another {what} for {flag}")
    probe_in = path if path.is_dir() else base
    try:
        with tempfile.TemporaryFile(dir=probe_in):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot write in {probe_in} ({exc.strerror or exc}); "
                         f"choose a writable {what} for {flag}") from None


def check_out_dir(path, ours=(), *, overwrite: bool = False, flag: str = "--out") -> Path:
    """The output-folder guard, run before any work. InputError (one line, exit 2) when ``path``
    is a file, cannot be written, or is a non-empty folder with entries monalisa did not write
    (entries not matching the globs ``ours``) and ``overwrite`` is false. With ``overwrite`` the
    folder is written with those entries kept. Returns ``path`` as a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is a file, not a folder; choose a new folder path for {flag}")
    _check_writable(path, flag, "folder")
    strangers = foreign_entries(path, ours)
    if strangers and not overwrite:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        raise InputError(f"{path}: holds files monalisa did not write ({shown}); choose a new or empty {flag} "
                         "folder, or pass --overwrite to write beside them (they are kept)")
    return path


def check_out_file(path, *, flag: str = "--out", ours=None, overwrite: bool = False) -> Path:
    """The output-file guard, run before any work. InputError (one line, exit 2) when ``path`` is a
    folder or cannot be written; when it exists and ``ours(path)`` says monalisa did not write it,
    unless ``overwrite``. Returns ``path`` as a Path."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; {flag} needs a file name (e.g. {path / 'out.json'})")
    _check_writable(path, flag, "file")
    if path.exists() and ours is not None and not overwrite and not ours(path):
        raise InputError(f"{path}: exists and was not written by monalisa; choose another {flag} file "
                         "or pass --overwrite to replace it")
    return path


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
