"""Writing files atomically: the whole file appears under its name, or nothing does."""

import os
import secrets


def write_atomically(path, chunks):
    """Writes the byte strings `chunks` to path through a temporary file in the same folder and
    os.replace, so a crash or an error never leaves a half-written file under path (and an
    existing file there is replaced only by a complete one). FileNotFoundError naming path when
    its folder does not exist."""
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            for data in chunks:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _create_temporary(path):
    """(fd, name) of a new file beside path, created with mode 0o666 less the umask, as open()
    would create path itself (tempfile.mkstemp's 0o600 would make saved files private)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: cannot save, the folder {folder} does not exist")
    while True:
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
