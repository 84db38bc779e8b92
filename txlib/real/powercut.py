"""Power cuts: a machine loses power, and every write that was not synced is lost.

A ``kill -9`` tests nothing about ``fsync``: the kernel keeps the dead process's writes
in its page cache and writes them out later, so a killed node finds everything it
wrote, synced or not. A power cut loses what the page cache held. This module makes
that loss happen on demand, as Jepsen's LazyFS does, with a small layer of its own:

- every tracked data file ``F`` has a side file ``F.unsynced``: before each write (or
  truncation) of ``F`` that has not been synced, the bytes it overwrites and the file's
  size are appended there (an undo record); a successful ``fsync`` of ``F`` empties it;
- :func:`lose_unsynced` (the power cut, once the file's processes are dead) undoes the
  records newest first: ``F`` becomes exactly what the last ``fsync`` made durable;
- the coordinator's log file tracks its own writes (:class:`Unsynced`);
- SQLite writes through a VFS shim, ``txlib-powercut``, registered with ctypes in the
  SQLite library the ``sqlite3`` module uses: it passes every call to the default VFS
  and tracks the writes, truncations and syncs of the database and WAL files. Whatever
  SQLite does not sync (``synchronous=OFF``, a checkpoint without sync) is lost.

What the model leaves out: a real power cut may also keep *some* unsynced writes, tear
a write in the middle, or forget a new file whose folder was never synced; here every
unsynced write is lost whole, and creating or deleting a file is durable at once. The
side files are the simulation's own notes: they are written without ``fsync`` and
survive because this is not a real power cut. The shared-memory index of a WAL
database (``-shm``) is deleted, as a reboot would lose it.
"""

from __future__ import annotations

import contextlib
import ctypes as C
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import TxlibError

SIDE = ".unsynced"
SYNCS = ".syncs"
VFS_NAME = "txlib-powercut"
_RECORD = struct.Struct("<qqq")  # offset, length of the old bytes, file size before


def side_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}{SIDE}")


def syncs_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}{SYNCS}")


class Unsynced:
    """The undo records of one data file's unsynced writes (see the module docstring).

    ``fresh``: the data file was just created, so older records (of a deleted file of
    the same name) no longer apply. Every sync also appends one byte to ``F.syncs``, so
    the syncs a file really got can be counted from outside (:func:`count_syncs`).
    """

    def __init__(self, path: str | os.PathLike[str], fresh: bool) -> None:
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._side = os.open(side_path(path), flags | (os.O_TRUNC if fresh else 0), 0o644)
        self._syncs = os.open(syncs_path(path), flags, 0o644)
        self._data = os.open(self.path, os.O_RDONLY)

    def before_write(self, offset: int, length: int) -> None:
        size = os.fstat(self._data).st_size
        old = os.pread(self._data, max(0, min(length, size - offset)), offset)
        os.write(self._side, _RECORD.pack(offset, len(old), size) + old)

    def before_truncate(self, new_size: int) -> None:
        size = os.fstat(self._data).st_size
        old = os.pread(self._data, max(0, size - new_size), new_size)
        os.write(self._side, _RECORD.pack(min(new_size, size), len(old), size) + old)

    def synced(self) -> None:
        os.ftruncate(self._side, 0)
        os.write(self._syncs, b"s")

    def close(self) -> None:
        for fd in (self._side, self._syncs, self._data):
            with contextlib.suppress(OSError):
                os.close(fd)


def lose_unsynced(paths: Iterable[str | os.PathLike[str]]) -> dict[str, int]:
    """The power cut, for the data files ``paths`` (every process writing them must be
    dead): undo each one's unsynced writes. Returns the unsynced bytes undone per file
    name (files without unsynced writes are left out). A WAL database's ``-shm`` file
    is deleted too."""
    lost: dict[str, int] = {}
    for raw in paths:
        path = Path(raw)
        side = side_path(path)
        if not side.exists():
            continue
        data = side.read_bytes()
        records = []
        at = 0
        while at + _RECORD.size <= len(data):
            offset, length, size = _RECORD.unpack_from(data, at)
            at += _RECORD.size
            if at + length > len(data):
                break  # a record torn by the kill itself: its write never happened
            records.append((offset, data[at:at + length], size))
            at += length
        if records and path.exists():
            fd = os.open(path, os.O_RDWR)
            try:
                written = os.fstat(fd).st_size
                for offset, old, size in reversed(records):
                    os.pwrite(fd, old, offset)
                    os.ftruncate(fd, size)
                lost[path.name] = max(written - records[0][2], 0) + sum(
                    len(o) for _, o, _ in records)
            finally:
                os.close(fd)
        side.write_bytes(b"")
    for raw in paths:
        shm = Path(f"{os.fspath(raw)}-shm")
        if os.fspath(raw).endswith(".sqlite"):
            shm.unlink(missing_ok=True)
    return lost


def count_syncs(path: str | os.PathLike[str]) -> int:
    """How many times a tracked file was synced since tracking began."""
    p = syncs_path(path)
    return p.stat().st_size if p.exists() else 0


def forget(path: str | os.PathLike[str]) -> None:
    """Remove a data file's tracking notes (the data file is being made anew)."""
    for p in (side_path(path), syncs_path(path)):
        p.unlink(missing_ok=True)


# --- the SQLite VFS shim ----------------------------------------------------------------
SQLITE_OK = 0
SQLITE_IOERR = 10
OPEN_MAIN_DB = 0x00000100
OPEN_MAIN_JOURNAL = 0x00000800
OPEN_WAL = 0x00080000
TRACKED = OPEN_MAIN_DB | OPEN_MAIN_JOURNAL | OPEN_WAL

_IO_FIELDS = ("xClose", "xRead", "xWrite", "xTruncate", "xSync", "xFileSize", "xLock",
              "xUnlock", "xCheckReservedLock", "xFileControl", "xSectorSize",
              "xDeviceCharacteristics", "xShmMap", "xShmLock", "xShmBarrier", "xShmUnmap",
              "xFetch", "xUnfetch")
_VFS_FIELDS = ("xOpen", "xDelete", "xAccess", "xFullPathname", "xDlOpen", "xDlError",
               "xDlSym", "xDlClose", "xRandomness", "xSleep", "xCurrentTime",
               "xGetLastError", "xCurrentTimeInt64", "xSetSystemCall", "xGetSystemCall",
               "xNextSystemCall")


class _IoMethods(C.Structure):
    _fields_ = [("iVersion", C.c_int), *((name, C.c_void_p) for name in _IO_FIELDS)]


class _File(C.Structure):
    _fields_ = [("pMethods", C.POINTER(_IoMethods))]


class _Vfs(C.Structure):
    _fields_ = [("iVersion", C.c_int), ("szOsFile", C.c_int), ("mxPathname", C.c_int),
                ("pNext", C.c_void_p), ("zName", C.c_char_p), ("pAppData", C.c_void_p),
                *((name, C.c_void_p) for name in _VFS_FIELDS)]


_FileP = C.POINTER(_File)
_CLOSE = C.CFUNCTYPE(C.c_int, _FileP)
_WRITE = C.CFUNCTYPE(C.c_int, _FileP, C.c_void_p, C.c_int, C.c_longlong)
_TRUNCATE = C.CFUNCTYPE(C.c_int, _FileP, C.c_longlong)
_SYNC = C.CFUNCTYPE(C.c_int, _FileP, C.c_int)
_OPEN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_void_p, _FileP, C.c_int, C.POINTER(C.c_int))
_DELETE = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_char_p, C.c_int)


class _Shim:
    """The registered VFS: the default VFS with ``xOpen`` and ``xDelete`` wrapped, and,
    for tracked files, the default io methods with ``xWrite``, ``xTruncate``, ``xSync``
    and ``xClose`` wrapped. Everything it allocates lives as long as the process."""

    def __init__(self, lib: Any) -> None:
        lib.sqlite3_vfs_find.restype = C.c_void_p
        lib.sqlite3_vfs_find.argtypes = [C.c_char_p]
        lib.sqlite3_vfs_register.argtypes = [C.c_void_p, C.c_int]
        base_ptr = lib.sqlite3_vfs_find(None)
        if not base_ptr:
            raise TxlibError("SQLite has no default VFS to wrap")
        self.base_ptr = base_ptr
        self.base = _Vfs.from_address(base_ptr)
        self.files: dict[int, tuple[Unsynced, _IoMethods]] = {}
        self.methods: dict[int, _IoMethods] = {}  # base methods address -> ours
        self.callbacks = (_OPEN(self._open), _DELETE(self._delete), _CLOSE(self._close),
                          _WRITE(self._write), _TRUNCATE(self._truncate), _SYNC(self._sync))
        self.vfs = _Vfs()
        C.pointer(self.vfs)[0] = self.base  # a copy of every field
        self.vfs.zName = VFS_NAME.encode()
        self.vfs.pNext = None
        self.vfs.xOpen = C.cast(self.callbacks[0], C.c_void_p)
        self.vfs.xDelete = C.cast(self.callbacks[1], C.c_void_p)
        rc = lib.sqlite3_vfs_register(C.byref(self.vfs), 0)
        if rc != SQLITE_OK:
            raise TxlibError(f"could not register the {VFS_NAME} SQLite VFS (error {rc})")

    def _ours(self, base: _IoMethods) -> _IoMethods:
        key = C.addressof(base)
        if key not in self.methods:
            mine = _IoMethods()
            C.pointer(mine)[0] = base
            for name, cb in zip(("xClose", "xWrite", "xTruncate", "xSync"),
                                self.callbacks[2:], strict=True):
                setattr(mine, name, C.cast(cb, C.c_void_p))
            self.methods[key] = mine
        return self.methods[key]

    def _open(self, _vfs: int, name: int, file: Any, flags: int, out: Any) -> int:
        try:
            path = C.string_at(name).decode() if name else ""
            fresh = bool(path) and not os.path.exists(path)
            rc: int = _OPEN(self.base.xOpen)(self.base_ptr, name, file, flags, out)
            if rc != SQLITE_OK or not path or not flags & TRACKED or not file[0].pMethods:
                return rc
            base = file[0].pMethods[0]
            self.files[C.addressof(file[0])] = (Unsynced(path, fresh), base)
            file[0].pMethods = C.pointer(self._ours(base))
            return rc
        except Exception:
            return SQLITE_IOERR

    def _delete(self, _vfs: int, name: bytes | None, sync_dir: int) -> int:
        try:
            rc: int = _DELETE(self.base.xDelete)(self.base_ptr, name, sync_dir)
            if rc == SQLITE_OK and name:
                forget(name.decode())
            return rc
        except Exception:
            return SQLITE_IOERR

    def _entry(self, file: Any) -> tuple[Unsynced, _IoMethods]:
        return self.files[C.addressof(file[0])]

    def _close(self, file: Any) -> int:
        try:
            tracker, base = self.files.pop(C.addressof(file[0]))
            file[0].pMethods = C.pointer(base)
            tracker.close()
            rc: int = _CLOSE(base.xClose)(file)
            return rc
        except Exception:
            return SQLITE_IOERR

    def _write(self, file: Any, buf: int, amount: int, offset: int) -> int:
        try:
            tracker, base = self._entry(file)
            tracker.before_write(offset, amount)
            rc: int = _WRITE(base.xWrite)(file, buf, amount, offset)
            return rc
        except Exception:
            return SQLITE_IOERR

    def _truncate(self, file: Any, size: int) -> int:
        try:
            tracker, base = self._entry(file)
            tracker.before_truncate(size)
            rc: int = _TRUNCATE(base.xTruncate)(file, size)
            return rc
        except Exception:
            return SQLITE_IOERR

    def _sync(self, file: Any, flags: int) -> int:
        try:
            tracker, base = self._entry(file)
            rc: int = _SYNC(base.xSync)(file, flags)
            if rc == SQLITE_OK:
                tracker.synced()
            return rc
        except Exception:
            return SQLITE_IOERR


_shim: _Shim | None = None


def sqlite_vfs() -> str:
    """Register the ``txlib-powercut`` VFS in this process (once) and return its name,
    for ``sqlite3.connect("file:...?vfs=txlib-powercut", uri=True)``."""
    global _shim
    if _shim is None:
        import _sqlite3

        where = getattr(_sqlite3, "__file__", None)
        try:
            lib = C.CDLL(where)  # its symbols, and those of the libsqlite3 it links
            lib.sqlite3_vfs_find  # noqa: B018 - raises AttributeError if not exported
        except (OSError, AttributeError):
            raise TxlibError(
                "power-cut testing of SQLite needs the SQLite library of Python's sqlite3 "
                f"module to export its C API (sqlite3_vfs_register); {where} does not"
            ) from None
        _shim = _Shim(lib)
    return VFS_NAME
