"""The two backends of every layer: backend="cpp" runs the compiled core (fastgru._core),
backend="numpy" the NumPy reference (fastgru.reference, the readable specification the tests
hold the core to). This is the one place the package imports the reference."""

from . import reference

BACKENDS = ("cpp", "numpy")
NUMPY = reference


def check_backend(backend: str) -> str:
    """backend if it is one of BACKENDS, else ValueError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend
