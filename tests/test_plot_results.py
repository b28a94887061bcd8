"""bench/plot_results.py draws the speed page's figures from the measured tables in bench/results/:
it runs on the stored results (into a temporary folder), draws every figure the pages show, and the
stored results agree with the tables printed on the speed page."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_LINK = re.compile(r"\]\(figures/([\w.-]+\.png)\)")


def test_script_draws_every_figure_of_the_pages(tmp_path):
    if importlib.util.find_spec("matplotlib") is None and not os.environ.get("CI"):
        pytest.skip('needs matplotlib (pip install ".[docs]")')
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plot_results.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    drawn = {path.name for path in tmp_path.glob("*.png")}
    for name in drawn:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    shown = {name for page in DOCS.glob("*.md") for name in FIGURE_LINK.findall(page.read_text(encoding="utf-8"))}
    stored = {path.name for path in (DOCS / "figures").glob("*.png")}
    assert shown <= drawn, f"pages show figures the script does not draw: {sorted(shown - drawn)}"
    assert drawn == stored, "docs/figures/ is not what bench/plot_results.py draws: run it and commit"
    assert drawn <= shown, f"figures no page shows: {sorted(drawn - shown)}"


def test_every_results_file_says_where_it_was_measured():
    files = sorted(RESULTS.glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("cpu", "date", "command", "software", "conditions", "unit"):
            assert data.get(key), f"{path.name}: no {key}"
        for name, table in data["tables"].items():
            assert table["rows"] and all(len(row) == len(table["columns"]) for row in table["rows"]), name


TRAINING = "| config (B,T,I,H) | threads | fastgru ms | torch ms |"
INFERENCE = "| config (B,T,I,H) | threads | fastgru ms | fastgru C++ core ms | Python layer over core | torch ms |"
HEADLINE = "| config (B,T,I,H) | threads | training: fastgru |"


def printed_rows(path, header):
    """{(config, threads): [the row's cells without spreads]} of the table whose header starts so."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:  # past the header and the separator
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[(cells[0].split(" (")[0], int(cells[1]))] = [cell.split(" (")[0] for cell in cells[2:]]
    return rows


@pytest.mark.parametrize(
    "page, header, table, columns",
    [
        ("docs/speed.md", TRAINING, "training_alone", ["fastgru", "torch"]),
        ("docs/speed.md", INFERENCE, "inference_alone", ["fastgru", "torch", "onnxruntime", "onednn"]),
        ("README.md", HEADLINE, "training_alone", ["fastgru", "torch"]),
        ("README.md", HEADLINE, "inference_alone", ["fastgru", "torch", "onnxruntime", "onednn"]),
    ],
    ids=["speed-training", "speed-inference", "readme-training", "readme-inference"],
)
def test_stored_results_are_the_printed_tables(page, header, table, columns):
    """The figures and the printed tables are one measurement: each stored row's times appear in the
    printed row of the same configuration and thread count."""
    data = json.loads((RESULTS / "compare_zen4.json").read_text(encoding="utf-8"))["tables"][table]
    printed = printed_rows(ROOT / page, header)
    assert len(printed) == len(data["rows"])
    for row in data["rows"]:
        values = dict(zip(data["columns"], row))
        cells = printed[(values["config"], values["threads"])]
        for column in columns:
            assert any(float(cell) == values[column] for cell in cells if re.fullmatch(r"-?[\d.]+", cell)), (
                page,
                table,
                values["config"],
                values["threads"],
                column,
            )
