"""The code of README.md and of the documentation pages (docs/*.md) runs: every ```python block is
executed on its own, in a fresh namespace and in a temporary working directory (files it saves
land there), so each block must carry its own imports and data. And README.md stays the front
door: short, with the two set-up commands, linking into the documentation.

Conventions for authors of README.md and of the pages:
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

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))
COMMANDS = ['pip install ".[examples]" && python examples/demo.py', 'pip install ".[test]" && python -m pytest']
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(\s*)```(\S*).*$")  # indented too: a block inside a list item; MyST: ```{include} path
SKIP_MARKER = re.compile(r"^<!--\s*skip-test:\s*(.*?)\s*-->\s*$")


def python_blocks(text, name="README.md"):
    """[(first line number, code, skip reason or None)] for every ```python block of text (of file name)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), None)
        if end is None:
            raise ValueError(f"{name}:{i + 1}: code fence is never closed")
        if language == "python":
            marker = SKIP_MARKER.match(lines[i - 1].strip()) if i > 0 else None
            code = "\n".join(line[len(indent) :] for line in lines[i + 1 : end]) + "\n"
            blocks.append((i + 2, code, marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = [(page, *block) for page in PAGES for block in python_blocks(page.read_text(encoding="utf-8"), page.name)]


def test_readme_and_pages_have_python_blocks():
    assert sum(page == README for page, *_ in BLOCKS) >= 1
    assert len({page for page, *_ in BLOCKS if page != README}) >= 5
    assert len(BLOCKS) >= 12


@pytest.mark.parametrize(
    "page, line, code, skip_reason", BLOCKS, ids=[f"{b[0].relative_to(ROOT)}:{b[1]}" for b in BLOCKS]
)
def test_readme_block_runs(page, line, code, skip_reason, tmp_path, monkeypatch):
    if skip_reason is not None:
        pytest.skip(skip_reason)
    monkeypatch.chdir(tmp_path)
    # Line numbers in tracebacks point into the page.
    compiled = compile("\n" * (line - 1) + code, str(page), "exec")
    try:
        exec(compiled, {"__name__": "__readme__"})
    except ModuleNotFoundError as exc:
        top_level = (exc.name or "").split(".")[0]
        if top_level and top_level != "fastgru" and importlib.util.find_spec(top_level) is None:
            pytest.skip(f"needs {top_level}, which is not installed")
        raise


def test_blocks_are_found_and_markers_honoured():
    text = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "```text",
            "not python",
            "```",
            "<!-- skip-test: needs mpiexec -->",
            "```python",
            "b = 2",
            "```",
            "- a list item:",
            "",
            "  ```python",
            "  if True:",
            "      c = 3",
            "  ```",
        ]
    )
    assert python_blocks(text) == [
        (2, "a = 1\n", None),
        (9, "b = 2\n", "needs mpiexec"),
        (14, "if True:\n    c = 3\n", None),
    ]


def test_readme_is_the_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for command in COMMANDS:
        assert command in text, command
    linked = {target.split("#")[0] for target in LINK.findall(text)}
    guide = {
        f"docs/{page}.md"
        for page in (
            "getting-started",
            "training",
            "layer-and-model",
            "torch",
            "keras",
            "deployment",
            "distributed",
            "cpp",
            "speed",
            "api",
        )
    }
    assert guide <= linked, f"README.md does not link to {sorted(guide - linked)}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_point_to_files(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        path = target.split("#")[0]
        if "://" in target or not path:
            continue
        assert (page.parent / path).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_build_folders_of_readme_commands_are_ignored_by_git():
    git = shutil.which("git")
    root = README.parent
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    folders = set(re.findall(r"(?:^|\s)-B\s+(\S+)", text)) | {"build", "docs/_build"}
    for folder in sorted(folders):
        result = subprocess.run([git, "check-ignore", "-q", f"{folder}/"], cwd=root)
        assert result.returncode == 0, f"{folder}/ (made by a README command) is not in .gitignore"
