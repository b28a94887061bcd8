"""Faults users hit, each in a fresh process: Ctrl-C inside a long C++ call, running out of memory
in the middle of training or inside a worker thread, a full disk or a read-only folder while
saving. (fork() after use: tests/test_threads.py.)"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals and resource limits")
RUN_TIMEOUT = 300  # guards against a hung child only; nothing here measures speed


def python(script, *args):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# A forward over 1024 layers x 50,000 steps: minutes of work in one C++ call, in little memory.
LONG_FORWARD = """
    import signal, sys, time
    import numpy as np
    import fastgru
    from fastgru import _core

    # As in a terminal: a child of a background job (a CI step run with &) starts with SIGINT
    # ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    config = _core.GruConfig(1, 64, 1024)
    params = np.zeros(_core.gru_param_count(config), np.float32)
    x = np.ones((50000, 1, 1), np.float32)
    print("ready", flush=True)
    start = time.perf_counter()
    try:
        _core.gru_forward_float32(config, params, x)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - start:.2f} s", flush=True)
    # Still usable after the interruption:
    small = _core.GruConfig(1, 3)
    y, _ = _core.gru_forward_float32(small, np.zeros(_core.gru_param_count(small), np.float32),
                                        np.ones((2, 1, 1), np.float32))
    print("usable", y.shape, flush=True)
"""


@posix_only
def test_ctrl_c_interrupts_a_long_forward_between_steps():
    child = python(LONG_FORWARD)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(2)  # the child is now deep inside the C++ call, which lasts minutes
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=RUN_TIMEOUT)
    finally:
        child.kill()
    lines = out.split("\n")
    assert lines[0].startswith("interrupted after"), out + err
    seconds = float(lines[0].split()[2])
    # Interrupted right after the signal, not at the end of the call (minutes): 2 s of work
    # before the signal plus a step or two after it.
    assert seconds < 30, out
    assert lines[1] == "usable (2, 1, 3)", out + err


# Prepended to the out-of-memory scripts: caps the address space at what the process uses now
# plus `room` bytes, and returns the limits to restore.
LIMIT_ADDRESS_SPACE = """
    import resource

    def limit_address_space(room):
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
        limits = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (used + room, limits[1]))
        return limits

    def print_outcome(call):
        try:
            call()
            print("finished")
        except MemoryError:
            print("MemoryError")
"""


OUT_OF_MEMORY = """
    import numpy as np
    import fastgru

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 20, 4)).astype(np.float32), rng.normal(size=64).astype(np.float32)
    est = fastgru.GRURegressor(hidden_size=32, epochs=2, batch_size=16, random_state=0).fit(X, y)
    before = est.predict(X)
    X_big = rng.normal(size=(512, 400, 4)).astype(np.float32)
    y_big = rng.normal(size=512).astype(np.float32)

    # Room for the data's copies, not for the training cache of one batch of 512 x 400 steps x 256 units.
    limits = limit_address_space(200 * 2**20)
    try:
        est.set_params(hidden_size=256, batch_size=512).fit(X_big, y_big)
        print("fit finished")
    except MemoryError:
        print("MemoryError")
    model = est.model_
    resource.setrlimit(resource.RLIMIT_AS, limits)
    # The model is whole: it predicts, and it trains further.
    out = model.eval()(X_big[:8])
    print("finite", bool(np.isfinite(out).all()))
    est.set_params(hidden_size=32, batch_size=16).fit(X, y)
    print("refit", bool(np.isfinite(est.predict(X)).all()))
"""


@posix_only
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the address space size from /proc")
def test_out_of_memory_mid_fit_raises_memory_error_and_leaves_a_usable_model():
    out, err = python(LIMIT_ADDRESS_SPACE + OUT_OF_MEMORY).communicate(timeout=RUN_TIMEOUT)
    assert out.split("\n")[:3] == ["MemoryError", "finite True", "refit True"], out + err


# 2 threads, each sweeping half of a 65536-row batch with temporaries it allocates itself
# (~270 MB a thread at H = 256): the limit leaves room for one thread's, not both.
OUT_OF_MEMORY_IN_A_WORKER = """
    import numpy as np
    import fastgru

    fastgru.set_num_threads(2)
    B, H = 65536, 256
    layer = fastgru.GRU(1, H).eval()
    x = np.ones((1, B, 1), np.float32)
    small = layer(x[:, :64])

    limits = limit_address_space(400 * 2**20)
    print_outcome(lambda: layer(x))
    resource.setrlimit(resource.RLIMIT_AS, limits)
    print("same", bool(np.array_equal(layer(x[:, :64]), small)))
"""


@posix_only
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the address space size from /proc")
def test_out_of_memory_in_a_worker_thread_raises_memory_error():
    """An allocation that fails in one of the pool's threads reaches the caller as MemoryError
    (it used to end the process), and the layer still computes the same results."""
    out, err = python(LIMIT_ADDRESS_SPACE + OUT_OF_MEMORY_IN_A_WORKER).communicate(timeout=RUN_TIMEOUT)
    assert out.split("\n")[:2] == ["MemoryError", "same True"], out + err


# A pool of 200 threads needs 200 thread stacks (8 MiB of address space each, by default): the
# limit leaves room for some of them, not all. Starting the pool used to hang (the threads already
# started were left waiting on a condition variable being destroyed) or abort.
THREADS_THAT_CANNOT_START = """
    import numpy as np
    import fastgru

    layer = fastgru.GRU(16, 64, seed=0).eval()
    x = np.ones((4, 64, 16), np.float32)
    fastgru.set_num_threads(1)
    expected, _ = layer(x)
    limits = limit_address_space(600 * 2**20)
    fastgru.set_num_threads(200)
    for attempt in range(2):                           # the next call tries to start the pool again
        print_outcome(lambda: layer(x))
    resource.setrlimit(resource.RLIMIT_AS, limits)
    fastgru.set_num_threads(2)
    print("same", bool(np.array_equal(layer(x)[0], expected)))
"""


@posix_only
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the address space size from /proc")
def test_a_thread_pool_the_system_cannot_start_raises_memory_error():
    out, err = python(LIMIT_ADDRESS_SPACE + THREADS_THAT_CANNOT_START).communicate(timeout=RUN_TIMEOUT)
    assert out.split("\n")[:3] == ["MemoryError", "MemoryError", "same True"], out + err


SAVE_UNDER_FAULT = """
    import os, resource, signal, sys
    import fastgru

    path, fault = sys.argv[1], sys.argv[2]
    new = fastgru.GRUModel(3, 64, 2, seed=1)       # a bigger model than the file holds
    if fault == "full-disk":
        # Writes past 4 KiB fail with EFBIG, as ENOSPC does on a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
    elif os.geteuid() == 0:
        # root writes into read-only folders: drop to an unprivileged user for this process.
        os.setgid(65534)
        os.setuid(65534)
    try:
        new.save(path)
        print("saved")
    except OSError as exc:
        print("OSError", type(exc).__name__)
"""


@posix_only
@pytest.mark.parametrize("fault", ["full-disk", "read-only-folder"])
def test_save_under_a_fault_raises_oserror_and_keeps_the_old_file(fault, tmp_path):
    import numpy as np

    import fastgru

    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "model.safetensors"
    old = fastgru.GRUModel(3, 4, 2, seed=0)
    old.save(path)
    before = path.read_bytes()
    if fault == "read-only-folder":
        folder.chmod(0o555)
    try:
        out, err = python(SAVE_UNDER_FAULT, path, fault).communicate(timeout=RUN_TIMEOUT)
    finally:
        folder.chmod(0o755)
    assert out.startswith("OSError"), out + err
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]  # no temporary file left
    x = np.ones((1, 5, 3), np.float32)
    np.testing.assert_array_equal(fastgru.load(path)(x), old.eval()(x))
