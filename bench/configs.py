"""The standard benchmark configurations, read from bench/configs.csv (the one list that
bench_gru, the Python benchmarks and the tests share).

    import importlib.util, pathlib
    spec = importlib.util.spec_from_file_location("configs", pathlib.Path("bench/configs.py"))
    ...  or, from a script in bench/:  from configs import CONFIGS

CONFIGS maps name -> Config(B, T, I, H, represents), in the file's order.
"""

import csv
import os
import platform
from typing import NamedTuple

CSV_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs.csv")


class Config(NamedTuple):
    B: int  # batch
    T: int  # steps
    I: int  # input features
    H: int  # hidden units
    represents: str

    @property
    def shape(self):
        """(B, T, I, H)."""
        return self.B, self.T, self.I, self.H


def load(path=CSV_PATH):
    """name -> Config, in file order; ValueError naming the line for a malformed entry."""
    with open(path, newline="") as f:
        rows = [(n, line) for n, line in enumerate(f, 1) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.reader(line for _, line in rows)
    header = next(reader)
    if header != ["name", "B", "T", "I", "H", "represents"]:
        raise ValueError(f"{path}: expected the header name,B,T,I,H,represents, got {','.join(header)}")
    configs = {}
    for (number, _), fields in zip(rows[1:], reader):
        try:
            name, B, T, I, H, represents = fields
            sizes = tuple(int(v) for v in (B, T, I, H))
        except ValueError:
            raise ValueError(
                f"{path}:{number}: expected name,B,T,I,H,represents with positive integer sizes, got {','.join(fields)}"
            ) from None
        if min(sizes) < 1 or name in configs:
            raise ValueError(f"{path}:{number}: sizes must be >= 1 and names unique, got {','.join(fields)}")
        configs[name] = Config(*sizes, represents)
    return configs


CONFIGS = load()


def cpu_name() -> str:
    """The CPU's model name, for the machine line every benchmark prints."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
