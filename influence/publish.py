"""Publishing outputs: the one place where a stage's files and folders reach their final names.

Every output is written into a hidden temporary sibling of its target,
`.<name>.tmp-<pid>-<token>`, flushed to disk (fsync of every file and folder), then swapped in
by one atomic rename, and the parent folder's entry is synced. A folder that already exists is
exchanged with its replacement in one step (Linux `renameat2(RENAME_EXCHANGE)`), so the target
never disappears; where that call is missing, the old folder is first renamed to
`.<name>.old-<pid>-<token>` and a later `clean_stale` puts it back if the process died between
the two renames.

So a reader sees the previous output or the new one, never half of one; a block that raises
publishes nothing; and a process killed at any point leaves the previous output as it was plus,
at worst, a temporary whose process is gone. `clean_stale` removes those (every publication
does it for its own target first, `clean_stale_under` sweeps a folder), and never touches the
temporaries of a process that is still running.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


# --- temporaries ---------------------------------------------------------------------------------


def temp_path(target: Path, kind: str = "tmp") -> Path:
    """A fresh hidden sibling of `target` owned by this process."""
    target = Path(target)
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _owner_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Temporaries in `folder` (of the target `name`, or of any target) whose process is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        match = _TEMP.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        if not _owner_alive(int(match["pid"])):
            found.append(entry)
    return found


def clean_stale(target: Path) -> list[Path]:
    """Remove the temporaries a killed run left beside `target`, after putting back a previous
    output that a run killed mid-swap had moved aside. Returns what was removed."""
    target = Path(target)
    removed = []
    for entry in stale_temps(target.parent, target.name):
        if _TEMP.match(entry.name)["kind"] == "old" and not os.path.lexists(target):
            os.rename(entry, target)
            sync_dir(target.parent)
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def clean_stale_under(folder: Path) -> list[Path]:
    """`clean_stale` for every target in `folder` and its subfolders (temporaries themselves are
    not searched)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    names = {m["name"] for e in folder.iterdir() if (m := _TEMP.match(e.name))}
    for name in sorted(names):
        removed += clean_stale(folder / name)
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and not _TEMP.match(entry.name):
            removed += clean_stale_under(entry)
    return removed


# --- flushing and swapping -----------------------------------------------------------------------


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(folder: Path) -> None:
    try:
        _fsync(folder, directory=True)
    except OSError:
        pass  # a filesystem that cannot sync folders: the rename is still atomic


def sync_tree(path: Path) -> None:
    """fsync a file, or every file and folder under a folder (folders after their content)."""
    path = Path(path)
    if not path.is_dir():
        _fsync(path)
        return
    for root, _, files in os.walk(path, topdown=False):
        for name in files:
            _fsync(Path(root) / name)
        sync_dir(Path(root))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False when the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel cannot
        return False
    raise OSError(errno, os.strerror(errno), f"{a} <-> {b}")


def swap_in(tmp: Path, target: Path) -> None:
    """Put the flushed `tmp` at `target` in one atomic step; a folder already at `target` is
    exchanged with it and then removed."""
    tmp, target = Path(tmp), Path(target)
    if target.is_dir() and not target.is_symlink():
        if _exchange(tmp, target):
            sync_dir(target.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous output
            return
        old = temp_path(target, "old")
        os.rename(target, old)
        os.rename(tmp, target)
        sync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(tmp, target)
    sync_dir(target.parent)


# --- the writers ---------------------------------------------------------------------------------


@contextmanager
def publishing_dir(target: Path) -> Iterator[Path]:
    """A fresh temporary folder to write `target`'s content into; it replaces `target` only if
    the block ends without error, and is removed otherwise."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = temp_path(target)
    tmp.mkdir()
    try:
        yield tmp
        sync_tree(tmp)
        swap_in(tmp, target)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


@contextmanager
def publishing_file(target: Path) -> Iterator[Path]:
    """A temporary path to write `target` at; it replaces `target` only if the block ends
    without error, and is removed otherwise."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = temp_path(target)
    try:
        yield tmp
        sync_tree(tmp)
        swap_in(tmp, target)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def write_bytes(target: Path, data: bytes) -> Path:
    with publishing_file(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: Path, text: str) -> Path:
    return write_bytes(target, text.encode())


def write_json(target: Path, payload: Any, *, indent: int = 2, **dumps: Any) -> Path:
    return write_text(target, json.dumps(payload, indent=indent, **dumps) + "\n")


def write_parquet_file(frame: Any, path: Path, *, compression: str = "zstd") -> None:
    """A polars frame or arrow table as one Parquet file with page checksums (CRC32 of every
    page, which readers that verify them use to detect corrupted bytes) and statistics;
    dictionary encoding only for strings (ids gain nothing from it). Not atomic: for writing
    inside a `publishing_dir` or `publishing_file`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = frame if isinstance(frame, pa.Table) else frame.to_arrow()
    strings = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
    ]
    pq.write_table(
        table,
        path,
        compression=compression,
        use_dictionary=strings,
        write_statistics=True,
        write_page_checksum=True,
    )


def write_parquet(frame: Any, target: Path, *, compression: str = "zstd") -> Path:
    """`write_parquet_file`, published atomically at `target`."""
    with publishing_file(target) as tmp:
        write_parquet_file(frame, tmp, compression=compression)
    return Path(target)
