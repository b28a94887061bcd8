"""README.md's code runs: every ```python block is executed on its own, in a fresh namespace and in
a temporary working directory (files it saves land there), so each block must carry its own
imports and data.

Conventions for README authors:
- A block that is not meant to run as it stands (a signature, a shell session) takes another fence
  (```text, ```bash), not ```python.
- A block that needs an optional package (torch, onnx, mpi4py, ...) just imports it: where that
  package is not installed the block is skipped, naming the package; CI installs them all, so
  there every block runs.
- A block that cannot run inside pytest at all (one that must be started under `mpiexec`) is
  preceded, on the line just before its fence, by `<!-- skip-test: why -->`; the reason is
  reported as the skip reason.
"""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")     # indented too: a block inside a list item
SKIP_MARKER = re.compile(r"^<!--\s*skip-test:\s*(.*?)\s*-->\s*$")


def python_blocks(text):
    """[(first line number, code, skip reason or None)] for every ```python block of text."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), None)
        if end is None:
            raise ValueError(f"README.md:{i + 1}: code fence is never closed")
        if language == "python":
            marker = SKIP_MARKER.match(lines[i - 1].strip()) if i > 0 else None
            code = "\n".join(line[len(indent):] for line in lines[i + 1:end]) + "\n"
            blocks.append((i + 2, code, marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("line, code, skip_reason", BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_readme_block_runs(line, code, skip_reason, tmp_path, monkeypatch):
    if skip_reason is not None:
        pytest.skip(skip_reason)
    monkeypatch.chdir(tmp_path)
    # Line numbers in tracebacks point into README.md.
    compiled = compile("\n" * (line - 1) + code, str(README), "exec")
    try:
        exec(compiled, {"__name__": "__readme__"})
    except ModuleNotFoundError as exc:
        top_level = (exc.name or "").split(".")[0]
        if top_level and top_level != "fastgru" and importlib.util.find_spec(top_level) is None:
            pytest.skip(f"needs {top_level}, which is not installed")
        raise


def test_blocks_are_found_and_markers_honoured():
    text = "\n".join([
        "```python", "a = 1", "```",
        "```text", "not python", "```",
        "<!-- skip-test: needs mpiexec -->", "```python", "b = 2", "```",
        "- a list item:", "", "  ```python", "  if True:", "      c = 3", "  ```",
    ])
    assert python_blocks(text) == [(2, "a = 1\n", None), (9, "b = 2\n", "needs mpiexec"),
                                   (14, "if True:\n    c = 3\n", None)]


def test_build_folders_of_readme_commands_are_ignored_by_git():
    git = shutil.which("git")
    root = README.parent
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    folders = set(re.findall(r"(?:^|\s)-B\s+(\S+)", README.read_text(encoding="utf-8"))) | {"build"}
    for folder in sorted(folders):
        result = subprocess.run([git, "check-ignore", "-q", f"{folder}/"], cwd=root)
        assert result.returncode == 0, f"{folder}/ (made by a README command) is not in .gitignore"
