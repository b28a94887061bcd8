"""Writing files atomically: the whole file appears under its name, or nothing does."""

import os
import tempfile


def write_atomically(path, chunks):
    """Writes the byte strings `chunks` to path through a temporary file in the same folder and
    os.replace, so a crash or an error never leaves a half-written file under path (and an
    existing file there is replaced only by a complete one)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
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
