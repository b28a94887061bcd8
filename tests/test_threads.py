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
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["computing child 0", "idle child 0"], result.stdout + result.stderr


def test_core_stub_lists_every_binding():
    """python/fastgru/_core.pyi (for type checkers and editors) must keep up with the bindings:
    regenerate it with `python tools/generate_core_stub.py` after changing them (and reinstalling)."""
    import ast
    import pathlib

    from fastgru import _core

    stub = pathlib.Path(_core.__file__).with_name("_core.pyi")
    body = ast.parse(stub.read_text()).body
    names = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {
        node.target.id for node in body if isinstance(node, ast.AnnAssign) and not node.target.id.startswith("__")
    }
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


CONTENDED = textwrap.dedent("""
    import os
    import numpy as np
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # before any thread exists: all share one CPU
    import fastgru

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 8, 16)).astype(np.float32)
    dy = rng.standard_normal((40, 8, 256)).astype(np.float32)
    results = []
    for threads in (1, 2, 2):
        fastgru.set_num_threads(threads)
        layer = fastgru.GRU(16, 256, seed=0)
        y, h_n = layer(x)
        dx, dh0 = layer.backward(dy)
        results.append([y, h_n, dx, dh0, layer.grad.copy()])
    same = all(np.array_equal(a, b) for other in results[1:] for a, b in zip(results[0], other))
    print("identical" if same else "DIFFERENT")
""")


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="needs sched_setaffinity")
def test_two_threads_on_one_cpu_give_the_one_thread_result():
    """Two threads sharing one CPU: partners get preempted mid-step, and the caller takes over
    their parts or finishes regions alone (run_phases). Whichever path the timing picks, the
    numbers are those of one thread, bit for bit."""
    result = subprocess.run([sys.executable, "-c", CONTENDED], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "identical", result.stdout + result.stderr


def test_set_num_threads_takes_ints_in_range_only(restore_threads):
    import numpy as np
    import pytest

    import fastgru

    for bad in (True, 1.5, "2", None):
        with pytest.raises(TypeError, match="n must be an int"):
            fastgru.set_num_threads(bad)
    for bad in (0, -1, 65537, 2**31, 2**70):
        with pytest.raises(ValueError, match=r"n must be an int in 1\.\.65536"):
            fastgru.set_num_threads(bad)
    fastgru.set_num_threads(np.int64(3))
    assert fastgru.get_num_threads() == 3
