"""Reading and writing hfp's own files safely: every read fails with one line naming the file, every write is
atomic.

Owns two things, used by every module that touches a file the user gives or hfp produces:

- ``read_text`` / ``read_bytes``: a missing, unreadable, special (FIFO, device), oversized or non-UTF-8 file is
  an ``HfpError`` of the caller's choosing whose message starts with the path, never a ``UnicodeDecodeError``
  or an endless read of ``/dev/zero``.
- ``write_atomic``: the content goes to a temporary file in the same folder, is flushed and fsynced, then
  renamed over the target (``os.replace``), so a crash, a signal or a full disk leaves either the old file or the
  new one, never a half-written one. ``create_exclusive`` does the same but never replaces an existing file, so
  two hfp processes writing into one results folder cannot clobber each other.

A full disk (``ENOSPC``, a quota, or a file-size limit, ``EFBIG``) is a ``DiskFullError``:
``disk full writing <file>``. It must not know what the files mean.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from profiler.errors import ConfigError, DiskFullError, HfpError

# Larger than any scenario, profile, record or probe set hfp writes; a bigger "config" is a wrong file.
MAX_TEXT_BYTES = 256 * 1024 * 1024
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def read_bytes(path: str | Path, error: type[HfpError] = ConfigError, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file; anything else (missing, a folder, a device, unreadable, over ``limit``) is
    ``error("<path>: <what>")``."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{p}: is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{p}: not a regular file")
        if st.st_size > limit:
            raise error(f"{p}: too large ({st.st_size:,} bytes; at most {limit:,} expected)")
        with p.open("rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except PermissionError:
        raise error(f"{p}: permission denied") from None
    except OSError as e:
        raise error(f"{p}: cannot read ({e.strerror or e})") from None


def decode_text(data: bytes, path: str | Path, error: type[HfpError] = ConfigError) -> str:
    """``data`` as UTF-8 (a leading byte-order mark is dropped); invalid bytes name the file and the offset."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    if "\x00" in text:
        raise error(f"{path}: not a text file (NUL byte at offset {text.index(chr(0))})")
    return text


def read_text(path: str | Path, error: type[HfpError] = ConfigError, limit: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file, with every failure one ``error`` naming the file."""
    return decode_text(read_bytes(path, error, limit), path, error)


def _raise_write_error(path: Path, e: OSError) -> None:
    if e.errno in DISK_FULL_ERRNOS:
        raise DiskFullError(f"disk full writing {path}") from None
    if isinstance(e, PermissionError):
        raise HfpError(f"{path}: permission denied") from None
    raise HfpError(f"{path}: cannot write ({e.strerror or e})") from None


def _temp_with(path: Path, data: bytes) -> str:
    """A fully written, fsynced temporary file beside ``path``; removed again if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Replace ``path`` with ``content`` (text is written as UTF-8) all at once; returns the path.

    On any failure the previous file is untouched and no temporary file is left behind.
    """
    p = Path(path)
    try:
        tmp = _temp_with(p, _bytes(content))
        try:
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        _raise_write_error(p, e)
    _sync_dir(p.parent)
    return p


def create_exclusive(path: str | Path, content: str | bytes) -> bool:
    """Create ``path`` with ``content`` only if it does not exist yet (atomically: the full content appears at
    once); False when another file (another hfp process's) is already there."""
    p = Path(path)
    try:
        tmp = _temp_with(p, _bytes(content))
        try:
            os.link(tmp, p)  # fails with EEXIST instead of replacing
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            # a filesystem without hard links: reserve the name exclusively, then rename the content over it
            try:
                os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_UMASK))
            except FileExistsError:
                return False
            os.replace(tmp, p)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:
        _raise_write_error(p, e)
    _sync_dir(p.parent)
    return True


def cache_dir() -> Path:
    """Where hfp keeps generated files (quantization ladders, hashes): ``$HFP_CACHE_DIR`` or ~/.cache/hfp."""
    root = os.environ.get("HFP_CACHE_DIR") or Path.home() / ".cache" / "hfp"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
