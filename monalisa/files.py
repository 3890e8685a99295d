"""Atomic file and folder writes, output-location checks, stale temporaries, content hashes.

Everything monalisa writes goes through here: a temporary name in the same folder, then
``os.replace``, so a crash or a kill never leaves a half-written file under the final name.
Temporaries are named ``.NAME.~PID@HOST~XXXX.tmp``; :func:`remove_stale_temps` removes the ones
whose process is gone, so the next run of a killed command cleans up after it.

Which files monalisa wrote -- one mechanism for every kind (movies, PNG, CSV, JSON, ONNX, packs):
each folder monalisa writes a file into holds a ledger, ``.monalisa-files.json``, with the name,
size and SHA-256 of each file it wrote there. :func:`write_bytes`, :func:`atomic_path` and
:func:`atomic_dir` record what they write; :func:`is_ours` says whether a file on disk is still
the one monalisa wrote (a user's file of the same name, or one edited since, is not). Rendered
frames (EXR, PNG, TIFF, JPEG) carry the mark in their own header (``monalisa:synthetic = 1``)
instead, since farm tasks write them side by side.

The guards every command runs before any work, each refusing with one line (exit 2):
:func:`check_writes` for files at names a command derives (a preview beside the frames, a results
table in a folder): a same-named file monalisa did not write is never replaced, ``--overwrite`` or
not; :func:`check_out_dir` for output folders (a folder holding other files is refused unless
``--overwrite``, which writes beside them; a file of a name monalisa writes there is refused
always); :func:`check_out_file` for a file the user names. ``atomic_dir`` never replaces or
deletes an entry that is not ours.
"""

from __future__ import annotations

import contextlib
import fcntl
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

#: in each folder monalisa writes to: the files it wrote there (name -> size, mtime_ns, sha256)
LEDGER = ".monalisa-files.json"
_LEDGER_FORMAT = "monalisa.files"

#: the pid/host tag of this process's temporaries
_TAG_RX = re.compile(r"^\..+\.~(\d+)@([^~/]+)~[A-Za-z0-9_]+\.tmp$")


def _tag() -> str:
    return f"~{os.getpid()}@{socket.gethostname() or 'host'}~"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, sha256: str | None = None):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (recorded as
    monalisa's, see :func:`record`), on error it goes. ``sha256``: the content's hash, when known."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_tag()}", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; finished files get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
        record(path, sha256=sha256)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- the ledger: which files monalisa wrote ------------------------------------------------------

@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on ``folder`` (its ledger's read-modify-write); best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _load_ledger(folder: Path) -> dict:
    """The ledger of ``folder``: {name: {"size", "mtime_ns", "sha256"}}; {} when missing or unreadable."""
    try:
        data = json.loads((Path(folder) / LEDGER).read_text(encoding="utf-8"))
        files = data["files"] if data.get("format") == _LEDGER_FORMAT else {}
    except (OSError, ValueError, TypeError, AttributeError, KeyError, RecursionError):
        return {}
    return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _save_ledger(folder: Path, files: dict) -> None:
    files = {name: files[name] for name in sorted(files) if (folder / name).is_file()}
    text = json.dumps({"format": _LEDGER_FORMAT, "version": 1, "files": files}, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{LEDGER}.{_tag()}", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, folder / LEDGER)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fingerprint(path: Path, sha256: str | None = None) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256 or sha256_file(path)}


#: image kinds whose header can carry monalisa's mark (rendered frames: ``monalisa:synthetic = 1``)
MARKABLE = (".exr", ".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _marked_in_header(path: Path) -> bool:
    """Whether ``path`` carries monalisa's mark itself: a rendered frame with ``monalisa:synthetic = 1``."""
    if path.suffix.lower() not in MARKABLE:
        return False
    try:
        import OpenImageIO as oiio
    except ImportError:
        return False
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return False
    try:
        return str(inp.spec().getattribute("monalisa:synthetic")) == "1"
    finally:
        inp.close()


def record(*paths, sha256: str | None = None) -> None:
    """Note in their folders' ledgers that monalisa wrote the files ``paths`` (as they are now).
    ``sha256``: the content's hash when one path is given and it is known. Rendered frames are not
    listed: their header carries the mark (and farm tasks write them side by side)."""
    by_folder: dict = {}
    for p in map(Path, paths):
        if p.name != LEDGER and not _marked_in_header(p):
            by_folder.setdefault(p.parent, []).append(p)
    for folder, files in by_folder.items():
        prints = {p.name: _fingerprint(p, sha256 if len(paths) == 1 else None) for p in files}
        with _locked(folder):
            ledger = _load_ledger(folder)
            ledger.update(prints)
            _save_ledger(folder, ledger)


def _owned(path: Path, ledger: dict) -> bool:
    entry = ledger.get(path.name)
    if entry is not None and not path.is_symlink() and path.is_file():
        st = path.stat()
        if st.st_size == entry.get("size") and (st.st_mtime_ns == entry.get("mtime_ns")
                                                or sha256_file(path) == entry.get("sha256")):
            return True
    return not path.is_symlink() and path.is_file() and _marked_in_header(path)


def is_ours(path) -> bool:
    """Whether the file at ``path`` is one monalisa wrote and nobody changed since: its folder's
    ledger lists it with this size and content (or, for a rendered frame, its header carries monalisa's mark)."""
    path = Path(path)
    return _owned(path, _load_ledger(path.parent))


def check_writes(paths, *, flag: str = "--out") -> list[Path]:
    """The guard for files at names a command derives, run before any work: InputError (one line,
    exit 2) when one of ``paths`` is a folder or a file monalisa did not write (see :func:`is_ours`),
    or cannot be written. ``--overwrite`` does not change this: such a file is never replaced."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            raise InputError(f"{path}: is a folder where monalisa writes a file; move it away or choose another {flag}")
        _check_writable(path, flag, "file")
        if (path.exists() or path.is_symlink()) and not is_ours(path):
            raise InputError(f"{path}: exists and was not written by monalisa, which never replaces it "
                             f"(not even with --overwrite); move it away or choose another {flag}")
    return paths


def matches(name: str, ours) -> bool:
    """Whether an entry ``name`` is of a name monalisa writes: it matches a glob of ``ours`` or is a
    hidden temporary of one (``.NAME.*.tmp``, ``.NAME.old``)."""
    if any(fnmatch.fnmatchcase(name, pat) for pat in ours):
        return True
    if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".old")):
        inner = name[1:].rsplit(".", 1)[0]
        return any(fnmatch.fnmatchcase(inner, pat) or fnmatch.fnmatchcase(inner, pat + ".*") for pat in ours)
    return False


def _bookkeeping(name: str, ours) -> bool:
    """The ledger, its temporaries, and hidden temporaries of names monalisa writes."""
    return name == LEDGER or name.startswith(f".{LEDGER}.") or (
        name.startswith(".") and name.endswith((".tmp", ".old")) and matches(name, ours))


def foreign_entries(folder, ours=("*",)) -> list[str]:
    """Names in ``folder`` that monalisa did not write (sorted); [] for a missing folder. A file is
    ours when the ledger says so (:func:`is_ours`), a subfolder when its name matches a glob of
    ``ours`` and everything in it is ours."""
    return sorted(_strangers(Path(folder), ours))


def _strangers(folder: Path, ours):
    """Yield, lazily, the names of ``folder``'s entries monalisa did not write."""
    if not folder.is_dir():
        return
    ledger = _load_ledger(folder)
    for p in folder.iterdir():
        if _bookkeeping(p.name, ours):
            continue
        if p.is_dir() and not p.is_symlink():
            mine = matches(p.name, ours) and next(_strangers(p, ("*",)), None) is None  # stops at the first
        else:
            mine = _owned(p, ledger)
        if not mine:
            yield p.name


def temp_dir(folder, name: str) -> Path:
    """A new empty folder ``folder/.NAME.~PID@HOST~XXXX.tmp`` (usual permissions), tagged with this
    process: :func:`remove_stale_temps` removes it once the process is gone."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.{_tag()}", suffix=".tmp", dir=folder))
    tmp.chmod(0o777 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_dir(path, ours=None, replace: bool = True):
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    Every file written in it is recorded as monalisa's (each folder's ledger). When every entry
    of an existing ``path`` is ours (:func:`foreign_entries`), the whole folder is swapped;
    otherwise the new entries are moved in one by one (each atomically), entries that are not ours
    are kept, and stale entries of ours whose names match ``ours`` (glob patterns; default: any)
    are removed. A new entry whose name is taken by one that is not ours is refused (InputError)
    before anything moves. An existing *file* at ``path`` is refused.
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
        _record_tree(tmp)
        ours = ("*",) if ours is None else ours
        strangers = [] if not replace else foreign_entries(path, ours)
        if not replace:
            os.rename(tmp, path)  # fails on an existing non-empty folder or a file
        elif strangers:
            _merge_into(tmp, path, ours, strangers)
        elif path.exists():
            _replace_dir(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _record_tree(top: Path) -> None:
    """Record every file below ``top`` that its folder's ledger does not list as it is."""
    for folder in [top, *(p for p in top.rglob("*") if p.is_dir() and not p.is_symlink())]:
        ledger = _load_ledger(folder)
        todo = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and p.name != LEDGER
                and not _owned(p, ledger)]
        if todo:
            record(*todo)


def _merge_into(tmp: Path, path: Path, ours, strangers) -> None:
    """Move ``tmp``'s entries into ``path`` (replacing ours of the same name), drop stale ones of
    ours, keep the ``strangers`` (entries monalisa did not write), merge the ledgers."""
    new = {p.name for p in tmp.iterdir()} - {LEDGER}
    taken = sorted(new & set(strangers))
    if taken:
        raise InputError(f"{path / taken[0]}: exists and was not written by monalisa, which never replaces it; "
                         "move it away or choose another output folder (nothing was written)")
    with _locked(path):
        ledger = {**_load_ledger(path), **_load_ledger(tmp)}
        for entry in path.iterdir():
            if (entry.name not in new and entry.name not in strangers and matches(entry.name, ours)
                    and not entry.name.startswith(".")):
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        _move_entries(tmp, path, new)
        _save_ledger(path, ledger)


def _move_entries(tmp: Path, path: Path, new) -> None:
    for name in sorted(new):
        src, dst = tmp / name, path / name
        if dst.is_dir() and not dst.is_symlink():
            _replace_dir(src, dst)
        else:
            os.replace(src, dst)


def _replace_dir(src: Path, dst: Path) -> None:
    """Put folder ``src`` in the place of folder ``dst``: the old one is renamed aside
    (``.NAME.old``), then removed, as a folder cannot be renamed over a non-empty one."""
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


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
    is a file, cannot be written, holds an entry monalisa did not write under a name it writes
    there (the globs ``ours``; never replaced, ``overwrite`` or not), or holds other entries
    monalisa did not write and ``overwrite`` is false. With ``overwrite`` the folder is written
    with those entries kept. Returns ``path`` as a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is a file, not a folder; choose a new folder path for {flag}")
    _check_writable(path, flag, "folder")
    strangers = foreign_entries(path, ours)
    taken = [name for name in strangers if matches(name, ours)]
    if taken:
        raise InputError(f"{path / taken[0]}: exists and was not written by monalisa, which writes a file of "
                         f"that name there and never replaces a user's (not even with --overwrite); move it "
                         f"away or choose a new {flag} folder")
    if strangers and not overwrite:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        raise InputError(f"{path}: holds files monalisa did not write ({shown}); choose a new or empty {flag} "
                         "folder, or pass --overwrite to write beside them (they are kept)")
    return path


def check_out_file(path, *, flag: str = "--out", ours=None, overwrite: bool = False) -> Path:
    """The guard for an output file the user names, run before any work. InputError (one line,
    exit 2) when ``path`` is a folder or cannot be written; when it exists and ``ours(path)``
    (default :func:`is_ours`) says monalisa did not write it, unless ``overwrite`` (the user named
    that very file). Returns ``path`` as a Path."""
    path = Path(path)
    ours = is_ours if ours is None else ours
    if path.is_dir():
        raise InputError(f"{path}: is a folder; {flag} needs a file name (e.g. {path / 'out.json'})")
    _check_writable(path, flag, "file")
    if path.exists() and not overwrite and not ours(path):
        raise InputError(f"{path}: exists and was not written by monalisa; choose another {flag} file "
                         "or pass --overwrite to replace it")
    return path


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path, sha256=hashlib.sha256(data).hexdigest()) as tmp:
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
