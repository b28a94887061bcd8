"""The thread pool across fork(): a forked child (multiprocessing's default on Linux) has none of
the parent's worker threads. It must still compute (the same numbers as the reference) and
exit normally, also when it never computed."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import fastgru

    fastgru.set_num_threads(2)
    layer = fastgru.GRU(8, 96, seed=0)
    ref = fastgru.GRU(8, 96, seed=0, backend="numpy")
    x = np.random.default_rng(0).standard_normal((12, 5, 8)).astype(np.float32)
    layer(x)                                   # the parent's pool now has a worker thread
    y_ref, _ = ref(x)
    ref.backward(np.ones_like(y_ref))

    pid = os.fork()
    if pid == 0:                               # child: computes with the parent's pool gone
        y, _ = layer(x)
        layer.backward(np.ones_like(y))
        ok = np.allclose(y, y_ref, rtol=1e-5, atol=1e-6) and np.allclose(layer.grad, ref.grad, rtol=1e-4, atol=1e-5)
        sys.exit(0 if ok else 3)               # a normal exit: static destructors run
    _, status = os.waitpid(pid, 0)
    print("computing child", os.waitstatus_to_exitcode(status))

    pid = os.fork()
    if pid == 0:                               # child that never computes
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print("idle child", os.waitstatus_to_exitcode(status))
""")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_forked_children_compute_and_exit():
    result = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", SCRIPT],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["computing child 0", "idle child 0"], result.stdout + result.stderr


def test_core_stub_lists_every_binding():
    """python/fastgru/_core.pyi (for type checkers and editors) must keep up with the bindings:
    regenerate it with `pybind11-stubgen fastgru._core -o python` after changing them."""
    import ast
    import pathlib

    from fastgru import _core

    stub = pathlib.Path(_core.__file__).with_name("_core.pyi")
    body = ast.parse(stub.read_text()).body
    names = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {node.target.id for node in body if isinstance(node, ast.AnnAssign) and not node.target.id.startswith("__")}
    public = {name for name in dir(_core) if not name.startswith("__")}
    assert public == names


def test_layers_used_from_several_python_threads_at_once(restore_threads):
    """The GIL is released during compute, so Python threads call the core concurrently (regions
    then take turns on the pool); each must get the numbers of the NumPy reference."""
    import threading

    import numpy as np

    import fastgru

    fastgru.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((30, 4, 6)).astype(np.float32)
    ref = fastgru.GRU(6, 70, seed=1, backend="numpy")
    y_ref, _ = ref(x)
    results, errors = [], []

    def work():
        try:
            layer = fastgru.GRU(6, 70, seed=1)
            for _ in range(5):
                y, _ = layer(x)
                layer.backward(np.ones_like(y))
            results.append(y)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4
    for y in results:
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
