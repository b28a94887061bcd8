"""Bar charts of the measured benchmark tables, for the documentation's speed page.

    python bench/plot_results.py                       # bench/results/*.json -> docs/figures/*.png
    python bench/plot_results.py --results DIR --out DIR

Each file in bench/results/ holds the tables of one run, as its program printed them: the CPU and
the software it ran on, the command, the conditions (load) and, per table, the columns and rows
(times in ms or µs; derived ratios are left out and computed here). This script only draws: a
figure changes when a results file does, never by hand. Every figure names the CPU its numbers
came from, since times (and often ratios) differ between machines.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIGURES = ROOT / "docs" / "figures"
COLORS = ["#1b6ca8", "#e07b39", "#55a868", "#8c6bb1", "#c44e52"]


@dataclass(frozen=True)
class Panel:
    """One subplot: columns of one table, the rows where `where` holds, one group of bars per row."""

    source: str  # results file name, without .json
    table: str
    columns: list[tuple[str, str]]  # (column, legend label); the first is the baseline of a relative figure
    title: str
    where: dict[str, Any] = field(default_factory=dict)
    group: str = "config"  # the column naming each group of bars


@dataclass(frozen=True)
class Figure:
    name: str  # written as <name>.png
    title: str
    panels: list[Panel]
    relative: bool  # True: each value over the group's first column; False: the values themselves
    ylabel: str
    one_column: bool = False  # panels stacked, each the figure's full width (for many groups of bars)


def threads_text(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def by_threads(source: str, table: str, columns: list[tuple[str, str]]) -> list[Panel]:
    return [Panel(source, table, columns, threads_text(n), {"threads": n}) for n in (1, 2)]


def by_kind_and_threads(
    source: str, table: str, kinds: dict[str, str], columns: Callable[[str], list[tuple[str, str]]]
) -> list[Panel]:
    """A panel per kind of measurement (its column prefix -> its title) and thread count."""
    return [
        Panel(source, table, columns(kind), f"{title}, {threads_text(n)}", {"threads": n})
        for kind, title in kinds.items()
        for n in (1, 2)
    ]


# The stream step's systems (stream_latency tables with int8).
INT8_STREAM_COLUMNS = [
    ("fastgru_float32", "fastgru float32"),
    ("onnxruntime", "ONNX Runtime"),
    ("fastgru_int8", "fastgru int8"),
]


RELATIVE = "time relative to {} (higher = slower)"
FIGURE_LIST = [
    Figure(
        "speed_training",
        "Training step (forward + backward + Adam), each system alone",
        by_threads("compare_zen4", "training_alone", [("fastgru", "fastgru"), ("torch", "torch.nn.GRU + Adam")]),
        True,
        RELATIVE.format("fastgru"),
    ),
    Figure(
        "speed_forward_backward",
        "Forward + backward (no optimizer), each system alone",
        by_threads(
            "compare_zen4",
            "forward_backward_alone",
            [("fastgru", "fastgru"), ("fastgru_core", "fastgru C++ core"), ("onednn", "oneDNN")],
        ),
        True,
        RELATIVE.format("fastgru"),
    ),
    Figure(
        "speed_inference",
        "Inference (forward only), each system alone",
        by_threads(
            "compare_zen4",
            "inference_alone",
            [("fastgru", "fastgru"), ("torch", "torch.nn.GRU"), ("onnxruntime", "ONNX Runtime"), ("onednn", "oneDNN")],
        ),
        True,
        RELATIVE.format("fastgru"),
    ),
    Figure(
        "speed_memory",
        "Peak memory of a training step",
        by_threads("compare_zen4", "training_memory", [("fastgru", "fastgru"), ("torch", "torch.nn.GRU + Adam")]),
        False,
        "growth of the peak resident set, MiB",
    ),
    Figure(
        "speed_torch_step",
        "A PyTorch training step: nn.GRU swapped for fastgru.torch.GRU",
        by_threads(
            "torch_step_zen4",
            "torch_step",
            [
                ("fastgru_torch", "fastgru.torch.GRU"),
                ("nn_gru", "torch.nn.GRU"),
                ("fastgru_layer", "fastgru layer"),
                ("fastgru_model", "fastgru model"),
            ],
        ),
        True,
        RELATIVE.format("fastgru.torch"),
        one_column=True,
    ),
    Figure(
        "speed_avx2",
        "C++ cores restricted to AVX2: fastgru against oneDNN",
        by_kind_and_threads(
            "avx2_restricted_zen4",
            "avx2_restricted",
            {"forward_backward": "forward + backward", "inference": "inference"},
            lambda kind: [(f"fastgru_{kind}", "fastgru"), (f"onednn_{kind}", "oneDNN")],
        ),
        True,
        RELATIVE.format("fastgru"),
    ),
    Figure(
        "speed_bfloat16",
        "bfloat16 products against float32 (C++ core; no bfloat16 units on this CPU)",
        by_kind_and_threads(
            "reduced_precision_avx2",
            "bfloat16",
            {"forward": "forward", "forward_backward": "forward + backward"},
            lambda kind: [(f"{kind}_float32", "float32"), (f"{kind}_bfloat16", "bfloat16 products")],
        ),
        True,
        RELATIVE.format("float32"),
    ),
    Figure(
        "speed_bfloat16_zen4",
        "bfloat16 products on AVX512_BF16 (VDPBF16PS), Python layer, each system alone",
        by_kind_and_threads(
            "reduced_precision_zen4",
            "bfloat16",
            {"train": "training step", "infer": "inference"},
            lambda kind: [
                (f"{kind}_bfloat16", "fastgru bfloat16"),
                (f"{kind}_float32", "fastgru float32"),
                (f"{kind}_torch_autocast", "torch.nn.GRU under autocast"),
            ],
        ),
        True,
        RELATIVE.format("fastgru bfloat16"),
    ),
    Figure(
        "speed_streaming",
        "One time step at a time (B=1, I=128, H=256, 1 thread, Python call included)",
        [
            Panel(
                "stream_latency_zen4",
                "stream_latency",
                [("fastgru", "fastgru float32"), ("onnxruntime", "ONNX Runtime")],
                "AVX-512 CPU (Zen 4)",
                group="variant",
            ),
            Panel("reduced_precision_avx2", "int8_stream", INT8_STREAM_COLUMNS, "AVX2-only CPU", group="variant"),
            Panel(
                "reduced_precision_zen4", "int8_stream", INT8_STREAM_COLUMNS, "AVX512_VNNI CPU (Zen 4)", group="variant"
            ),
        ],
        False,
        "µs per step",
    ),
]


def load(results: Path, source: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((results / f"{source}.json").read_text(encoding="utf-8"))
    return data


def rows_of(data: dict[str, Any], panel: Panel) -> list[dict[str, Any]]:
    table = data["tables"][panel.table]
    rows = [dict(zip(table["columns"], row)) for row in table["rows"]]
    selected = [row for row in rows if all(row[key] == value for key, value in panel.where.items())]
    if not selected:
        raise ValueError(f"{panel.source}.json, table {panel.table}: no row where {panel.where}")
    return selected


def short_cpu(cpu: str) -> str:
    return cpu.split(";")[0]


def draw(figure: Figure, results: Path, out: Path) -> Path:
    """Draws one figure from the results files; returns the PNG's path."""
    columns = 1 if figure.one_column else min(len(figure.panels), 2)
    rows = (len(figure.panels) + columns - 1) // columns
    width = 12.4 if figure.one_column else 6.2 * columns
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.6 * rows + 0.9), squeeze=False)
    cpus = []
    for ax, panel in zip(axes.flat, figure.panels):
        data = load(results, panel.source)
        if short_cpu(data["cpu"]) not in cpus:
            cpus.append(short_cpu(data["cpu"]))
        selected = rows_of(data, panel)
        groups = [str(row[panel.group]) for row in selected]
        bar_width = 0.8 / len(panel.columns)
        top = 0.0
        for k, (column, label) in enumerate(panel.columns):
            values = [
                float(row[column]) / (float(row[panel.columns[0][0]]) if figure.relative else 1.0) for row in selected
            ]
            positions = [i + (k - (len(panel.columns) - 1) / 2) * bar_width for i in range(len(groups))]
            bars = ax.bar(positions, values, bar_width, label=label, color=COLORS[k % len(COLORS)])
            text = [f"{v:.2f}x" if figure.relative else f"{v:.3g}" for v in values]
            ax.bar_label(bars, labels=text, fontsize=6.5, padding=1, rotation=90 if len(panel.columns) > 3 else 0)
            top = max(top, *values)
        ax.set_ylim(0, top * 1.45)
        ax.set_xticks(range(len(groups)), groups, rotation=20 if len(groups) > 6 and not figure.one_column else 0)
        ax.set_title(panel.title, fontsize=10)
        ax.set_ylabel(figure.ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        if figure.relative:
            ax.axhline(1.0, color="black", linewidth=0.6)
        ax.legend(fontsize=7, loc="upper center", ncol=len(panel.columns), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(figure.panels) :]:
        ax.set_visible(False)
    fig.suptitle(figure.title, fontsize=11)
    fig.text(0.5, 0.01, "Measured on: " + " | ".join(cpus), ha="center", fontsize=7.5, color="#444444")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{figure.name}.png"
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def draw_mpi_cost_model(results: Path, out: Path) -> Path:
    """Speed-up of one training step on N machines (the cost model of bench/mpi_scaling.py), at two
    network bandwidths: t_step(1) / t_step(N), t_step = measured compute + modelled all-reduce."""
    data = load(results, "mpi_scaling")
    table = data["tables"]["cost_model"]
    rows = [dict(zip(table["columns"], row)) for row in table["rows"]]
    machines = [int(row["machines"]) for row in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.3))
    positions = range(len(rows))
    bandwidths = [("allreduce_ms_10gbit", "10 Gbit/s"), ("allreduce_ms_100gbit", "100 Gbit/s")]
    for k, (column, label) in enumerate(bandwidths):
        base = rows[0]["compute_ms"] + rows[0][column]
        speedups = [base / (row["compute_ms"] + row[column]) for row in rows]
        bars = ax.bar(
            [p + (k - 0.5) * 0.38 for p in positions], speedups, 0.38, label=f"model, {label}", color=COLORS[k]
        )
        ax.bar_label(bars, labels=[f"{v:.1f}x" for v in speedups], fontsize=7, padding=1)
    ax.plot(list(positions), machines, color="black", linewidth=0.8, marker=".", label="N (perfect scaling)")
    ax.set_xticks(list(positions), [f"{n}\n({row['batch_per_machine']}/machine)" for n, row in zip(machines, rows)])
    ax.set_xlabel("machines N (sequences per machine of a global batch of 64)", fontsize=8)
    ax.set_ylabel("speed-up of a training step over 1 machine", fontsize=8)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Data-parallel training over MPI: cost model at medium, ring all-reduce", fontsize=10)
    fig.text(
        0.5,
        0.01,
        "Compute measured on: " + short_cpu(data["cpu"]) + " (loaded machine)",
        ha="center",
        fontsize=7.5,
        color="#444444",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "speed_mpi.png"
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files (*.json)")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder the PNG files are written to")
    args = parser.parse_args(argv)
    written = [draw(figure, args.results, args.out) for figure in FIGURE_LIST]
    written.append(draw_mpi_cost_model(args.results, args.out))
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
