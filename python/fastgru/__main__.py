"""python -m fastgru: what a bug report needs, in one command: fastgru's version and build, the
instruction sets this CPU runs and the one in use, the thread count, Python, NumPy and the
optional packages fastgru works with (found or not, with their versions)."""

import importlib.metadata
import platform
import sys

import numpy as np

import fastgru
from fastgru import _core

OPTIONAL = (
    "torch",
    "onnx",
    "onnxruntime",
    "mpi4py",
    "scikit-learn",
    "safetensors",
    "tqdm",
    "keras",
    "jax",
    "flax",
    "tensorflow-cpu",
)


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report() -> list[str]:
    """The lines `python -m fastgru` prints."""
    lines = [
        f"fastgru {fastgru.__version__} ({fastgru.__file__})",
        f"build: {_core.COMPILER}, {_core.BUILD_TYPE}",
        f"instruction sets: available {', '.join(fastgru.available_isas())}; in use {fastgru.active_isa()}",
        f"threads: {fastgru.get_num_threads()} (fastgru.set_num_threads, default OMP_NUM_THREADS or the core count);"
        f" regions on {'the OpenMP runtime' if _core.uses_openmp_threads() else 'fastgru'}'s threads",
        f"CPU: {cpu_model()} ({platform.machine()})",
        f"Python {sys.version.split()[0]} on {platform.platform()}",
        f"NumPy {np.__version__}",
    ]
    for name in OPTIONAL:
        try:
            lines.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{name}: not installed")
    return lines


if __name__ == "__main__":
    print("\n".join(report()))
