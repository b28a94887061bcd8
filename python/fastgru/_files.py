"""Writing files atomically: the whole file appears under its name, or nothing does."""

import errno
import os
import secrets
import stat
from collections.abc import Iterable


def write_atomically(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """Writes the byte strings `chunks` to path through a temporary file in the same folder and
    os.replace, so a crash or an error never leaves a half-written file under path (and an
    existing file there is replaced only by a complete one).

    As open(path, "wb") would: a symbolic link at path has its target written; an existing file
    keeps its permission bits, and one that may not be written raises PermissionError; a new file
    gets 0o666 less the umask. FileNotFoundError naming path when its folder does not exist."""
    target = _destination(path)
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            for data in chunks:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _destination(given: str | os.PathLike[str]) -> str:
    """The file that path names (through symbolic links), checked as open() for writing would."""
    path = os.fsdecode(os.fspath(given))
    if not path:
        raise FileNotFoundError(errno.ENOENT, "cannot save to an empty path", path)
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "permission denied (the file may not be written)", path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: cannot save, the folder {folder} does not exist")
    return target


def _create_temporary(target: str) -> tuple[int, str]:
    """(fd, name) of a new file beside target, with target's permission bits when it exists, else
    0o666 less the umask (tempfile.mkstemp's 0o600 would make saved files private)."""
    folder = os.path.dirname(os.path.abspath(target))
    # A short prefix of the name: the suffix must not push a long, valid name past NAME_MAX.
    prefix = os.path.basename(target).encode()[:64].decode(errors="ignore")
    mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else None
    while True:
        tmp = os.path.join(folder, f".{prefix}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.chmod(tmp, mode)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
