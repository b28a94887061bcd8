"""The C++ library as a C++ user gets it: `cmake --install` of the core, then examples/cpp built
out of tree against the installed package (find_package(fastgru), fastgru::fastgru) and run; it
trains a GRU in C++ alone and must print a falling loss and beat predicting the mean on held-out
data. Also: the wheel holds the Python package only, never the C++ library."""

import importlib.metadata
import os
import pathlib
import re
import shutil
import subprocess
import sysconfig

REPO = pathlib.Path(__file__).resolve().parents[1]
# cmake and ninja come with the test extra; pip puts them beside this Python even when that
# folder is not on PATH.
TOOL_PATH = os.pathsep.join(
    [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user"), os.environ.get("PATH", "")]
)


def run(*command):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_installed_library_trains_the_cpp_example(tmp_path):
    cmake, ninja = shutil.which("cmake", path=TOOL_PATH), shutil.which("ninja", path=TOOL_PATH)
    assert cmake and ninja, "cmake and ninja come with the test extra: pip install '.[test]'"
    build, prefix, example = tmp_path / "build", tmp_path / "prefix", tmp_path / "example"
    release = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=Release"]
    run(cmake, "-S", REPO, "-B", build, *release, f"-DCMAKE_INSTALL_PREFIX={prefix}")
    run(cmake, "--build", build, "--target", "fastgru_core")
    run(cmake, "--install", build)
    assert list(prefix.glob("lib*/cmake/fastgru/fastgruConfig.cmake")), "no CMake package installed"
    headers = prefix / "include"
    for header in headers.glob("fastgru/*.h"):  # public headers include only public headers
        for included in re.findall(r'#include\s*"([^"]+)"', header.read_text()):
            assert (headers / included).is_file(), f"{header.name} includes {included}, which is not installed"

    run(cmake, "-S", REPO / "examples" / "cpp", "-B", example, *release, f"-DCMAKE_PREFIX_PATH={prefix}")
    run(cmake, "--build", example)
    output = run(example / "train_gru")

    assert importlib.metadata.version("fastgru") in output.splitlines()[0]
    losses = [float(value) for value in re.findall(r"loss ([0-9.eE+-]+)", output)]
    assert len(losses) >= 10, output
    assert losses[-1] < 0.25 * losses[0], output
    held_out, baseline = map(float, re.search(r"held-out mse (\S+) \(predicting 0: (\S+)\)", output).groups())
    assert held_out < 0.25 * baseline, output


def test_wheel_holds_no_cpp_library():
    """Wheel builds turn FASTGRU_INSTALL off: only the Python package and its _core module."""
    files = [str(f) for f in importlib.metadata.files("fastgru")]
    assert not [f for f in files if f.endswith((".a", ".h", ".cmake")) or "/include/" in f], files
