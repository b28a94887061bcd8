"""The standard benchmark configurations (bench/configs.csv): the C++ benchmark's compiled-in
list equals the Python reader's, and every configuration's shapes run correctly (at a few
steps, float32) against the NumPy reference, so a benchmark never times a shape the tests
have not checked."""

import importlib.util
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import fastgru

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
CHECK_STEPS = 3  # enough to hand the state over between steps; cheap for the reference at H=512


def load_configs_module():
    spec = importlib.util.spec_from_file_location("bench_configs", BENCH / "configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIGS = load_configs_module().CONFIGS


def test_the_list_holds_the_standard_configurations():
    assert {name: c.shape for name, c in CONFIGS.items()} == {
        "small": (32, 50, 32, 64),
        "medium": (64, 100, 128, 256),
        "large": (64, 100, 256, 512),
        "b1": (1, 100, 128, 256),
        "long": (16, 1000, 64, 128),
    }


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not on PATH")
def test_cpp_header_lists_the_same_configurations(tmp_path):
    header = tmp_path / "bench_configs.h"
    subprocess.run(
        [
            "cmake",
            f"-DCONFIGS_CSV={BENCH / 'configs.csv'}",
            f"-DCONFIGS_HEADER={header}",
            "-P",
            str(BENCH / "configs.cmake"),
        ],
        check=True,
        capture_output=True,
    )
    entries = re.findall(r'\{"(\w+)", (\d+), (\d+), (\d+), (\d+)\}', header.read_text())
    assert [(name, *map(int, sizes)) for name, *sizes in entries] == [(name, *c.shape) for name, c in CONFIGS.items()]


def test_bad_lines_are_named(tmp_path):
    path = tmp_path / "configs.csv"
    path.write_text("# comment\nname,B,T,I,H,represents\nok,1,2,3,4,fine\nbad,1,x,3,4,oops\n")
    with pytest.raises(ValueError, match=r"configs.csv:4: expected name,B,T,I,H,represents"):
        load_configs_module().load(str(path))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_shapes_match_the_reference(name, rng):
    B, _, I, H = CONFIGS[name].shape
    x = rng.uniform(-1, 1, (CHECK_STEPS, B, I)).astype(np.float32)
    dy = rng.uniform(-1, 1, (CHECK_STEPS, B, H)).astype(np.float32)
    results = []
    for backend in ("cpp", "numpy"):
        layer = fastgru.GRU(I, H, seed=0, backend=backend)
        y, h_n = layer(x)
        dx, _ = layer.backward(dy)
        results.append({"y": y, "h_n": h_n, "dx": dx, **{k: g.copy() for k, g in layer.grads().items()}})
    got, want = results
    for key in want:
        diff = np.abs(got[key].astype(np.float64) - want[key]).max()
        scale = max(1.0, np.abs(want[key]).max())
        assert diff <= 1e-4 * scale, f"{name} {key}: max abs error {diff:.3g} (scale {scale:.3g})"
