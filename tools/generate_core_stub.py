"""Regenerates python/fastgru/_core.pyi, the type stub of the compiled core, from the installed
fastgru (install the checkout first: pip install --no-build-isolation --no-deps .):

    python tools/generate_core_stub.py

It runs pybind11-stubgen (the `lint` extra installs it) and then makes the stub what
`mypy --strict` accepts and what does not change from build to build: the values of __version__,
BUILD_TYPE and COMPILER are dropped (their types stay), and the bare generic types pybind11 names
(py::tuple, py::list, py::dict, py::array) get their parameters. tests/test_threads.py checks
that the stub lists every binding; tests/test_lint.py runs mypy --strict over it.
"""

import pathlib
import re
import subprocess
import sys
import tempfile

STUB = pathlib.Path(__file__).resolve().parent.parent / "python" / "fastgru" / "_core.pyi"
BUILD_VALUES = ("__version__", "BUILD_TYPE", "COMPILER")
# A bare name (not already followed by "[") of a generic type, and what it becomes.
GENERICS = {
    r"\bnumpy\.ndarray\b(?!\[)": "numpy.typing.NDArray[typing.Any]",
    r"(?<![\w.])tuple\b(?!\[)": "tuple[typing.Any, ...]",
    r"(?<![\w.])list\b(?!\[)": "list[typing.Any]",
    r"(?<![\w.])dict\b(?!\[)": "dict[typing.Any, typing.Any]",
}


def clean(stub: str) -> str:
    """The stub with the build's values dropped and every generic type parameterized."""
    lines = []
    in_docstring = False
    for line in stub.splitlines():
        name = line.split(":", 1)[0]
        if name in BUILD_VALUES and " = " in line:
            line = line.split(" = ", 1)[0]
        quotes = line.count('"""')
        if not in_docstring and not quotes:
            for pattern, replacement in GENERICS.items():
                line = re.sub(pattern, replacement, line)
        in_docstring ^= quotes % 2 == 1
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        # Run outside the checkout, so that the installed package is the one imported.
        subprocess.run([sys.executable, "-m", "pybind11_stubgen", "fastgru._core", "-o", out], check=True, cwd=out)
        generated = pathlib.Path(out, "fastgru", "_core.pyi").read_text()
    STUB.write_text(clean(generated))
    print(f"wrote {STUB}")


if __name__ == "__main__":
    main()
