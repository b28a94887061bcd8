"""fastgru against torch.nn.GRU + torch.optim.Adam, ONNX Runtime (inference) and oneDNN's fused
GRU, by the protocol of bench/README.md: each system alone in a fresh process and all of them
interleaved in one process, same thread count, repeats with the order of the systems
alternated, medians and their spread, ratios, peak memory of the training step.

    python bench/compare.py [--configs small medium ...] [--threads 1 2] [--iters N] [--repeats R]
                            [--markdown] [--bench-gru PATH | --peak GFLOPS] [--onednn PATH]
                            [--no-onnx] [--no-alone] [--no-interleaved] [--bf16]

--bf16 adds fastgru with compute_dtype="bfloat16", torch.nn.GRU under
torch.autocast("cpu", dtype=torch.bfloat16) and, with onednn_gru, oneDNN's bfloat16 GRU to the
runs, and a table of their times beside fastgru's float32.

Before any timing, each configuration is checked: fastgru's y, h_n, dx and weight gradients
against torch's (and ONNX Runtime's y against torch's), so wrong code is never timed;
bench_gru and onednn_gru check themselves against naive GRUs.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from configs import CONFIGS, cpu_name  # bench/configs.csv, the list shared with bench_gru and the tests

# Timed iterations per measurement by default (fewer where one step is long).
DEFAULT_ITERS = {"small": 30, "medium": 10, "large": 6, "b1": 30, "long": 6}
WARMUP = 2
MEMORY_STEPS = 3
LR = 1e-3
# What each system can time: "train" = forward + backward + Adam + zero_grad, "fwdbwd" = forward
# + backward (oneDNN's training work), "infer" = forward only.
SYSTEMS = {
    "fastgru": ("train", "fwdbwd", "infer"),
    "core": ("train", "fwdbwd", "infer"),
    "torch": ("train", "infer"),
    "onnxrt": ("infer",),
    "onednn": ("fwdbwd", "infer"),
    "fastgru_bf16": ("train", "fwdbwd", "infer"),
    "torch_bf16": ("train", "infer"),
    "onednn_bf16": ("fwdbwd", "infer"),
}
INTERLEAVED = ("fastgru", "torch", "onnxrt")
BF16_SYSTEMS = ("fastgru_bf16", "torch_bf16")


def forward_flops(B, T, I, H):
    """The GEMM-bound count: forward = 2*T*B*3H*(I+H); a training step is 3x that."""
    return 2.0 * T * B * 3 * H * (I + H)


def make_data(B, T, I, H, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    dy = rng.uniform(-1, 1, (T, B, H)).astype(np.float32)
    return x, dy


# -- the operations being timed, per system ------------------------------------------------------
def fastgru_ops(B, T, I, H, compute_dtype="float32"):
    """{op: callable} for the fastgru Python layer, and the training step (for the memory probe)."""
    import fastgru

    x, dy = make_data(B, T, I, H)
    layer = fastgru.GRU(I, H, dtype="float32", compute_dtype=compute_dtype, seed=0)
    opt = fastgru.Adam(layer, lr=LR)

    def fwdbwd():
        layer.train()
        layer(x)
        layer.backward(dy)

    def train():
        fwdbwd()
        opt.step()
        opt.zero_grad()

    def infer():
        layer.eval()
        layer(x)

    return {"train": train, "fwdbwd": fwdbwd, "infer": infer}, layer


def torch_ops(B, T, I, H, gru=None, autocast=False):
    """{op: callable} for torch.nn.GRU + Adam; autocast: the forward under CPU autocast to bfloat16."""
    import contextlib

    import torch

    x, dy = make_data(B, T, I, H)
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    if gru is None:
        torch.manual_seed(0)
        gru = torch.nn.GRU(I, H)
    opt = torch.optim.Adam(gru.parameters(), lr=LR)
    region = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext

    def train():
        with region():
            y, _ = gru(xt)
        y.backward(dyt)
        opt.step()
        opt.zero_grad()

    def infer():
        with torch.inference_mode(), region():
            gru(xt)

    return {"train": train, "infer": infer}


def onnxrt_ops(B, T, I, H, path, threads):
    import onnxruntime as ort

    x, _ = make_data(B, T, I, H)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return {"infer": lambda: session.run(None, {"x": x})}, session


def set_threads(system, threads):
    if system.startswith("fastgru"):
        import fastgru

        fastgru.set_num_threads(threads)
    elif system.startswith("torch"):
        import torch

        torch.set_num_threads(threads)


# -- correctness gate ------------------------------------------------------------------------------
def check_agreement(name, threads, onnx_path):
    """Raises SystemExit unless fastgru (and ONNX Runtime) agree with torch on this config."""
    import torch

    import fastgru

    B, T, I, H = CONFIGS[name].shape
    x, dy = make_data(B, T, I, H)
    layer = fastgru.GRU(I, H, dtype="float32", seed=0)
    gru = torch_gru_like(layer)

    def close(what, got, want, rtol=1e-4, atol=1e-5):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = max(1.0, float(np.abs(want).max()))
        if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol * scale):
            err = np.abs(got - want).max() if got.shape == want.shape else "shape"
            raise SystemExit(f"{name}: {what} differs from torch (max |diff| {err}); not timing wrong code")

    y, h_n = layer(x)
    dx, _ = layer.backward(dy)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, hn_t = gru(xt)
    yt.backward(torch.from_numpy(dy))
    close("y", y, yt.detach().numpy())
    close("h_n", h_n, hn_t.detach().numpy())
    # Gradients sum over T*B rows: a looser tolerance, still far below any real bug.
    close("dx", dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4)
    grads = layer.grads()
    for pname, p in gru.named_parameters():
        close(f"d{pname}", grads[pname], p.grad.numpy(), rtol=1e-3, atol=1e-4)
    layer.eval()
    close("y (eval)", layer(x)[0], yt.detach().numpy())
    if onnx_path is not None:
        ops, _ = onnxrt_ops(B, T, I, H, onnx_path, threads)
        session_y = ops["infer"]()[0]
        close("y (onnxruntime)", session_y, yt.detach().numpy())


def torch_gru_like(layer):
    """A torch.nn.GRU holding a copy of the fastgru layer's weights."""
    import torch

    gru = torch.nn.GRU(layer.input_size, layer.hidden_size)
    with torch.no_grad():
        for name, value in layer.state_dict().items():
            getattr(gru, name).copy_(torch.from_numpy(np.array(value)))
    return gru


# -- ONNX Runtime ----------------------------------------------------------------------------------
def onnx_available():
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(name, path):
    """A torch GRU with fastgru's seed-0 weights as one ONNX GRU node (TorchScript exporter)."""
    import torch

    import fastgru

    B, T, I, H = CONFIGS[name].shape
    gru = torch_gru_like(fastgru.GRU(I, H, dtype="float32", seed=0))
    x, _ = make_data(B, T, I, H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            gru,
            (torch.from_numpy(x),),
            path,
            input_names=["x"],
            output_names=["y", "h_n"],
            opset_version=17,
            dynamo=False,
        )


# -- timing ----------------------------------------------------------------------------------------
def _runqueue_wait():
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat; 0 elsewhere).
    On an oversubscribed machine, time measured around a call is mostly this wait: the
    scheduler, not the library, decides it."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return 0.0


def median_seconds(fn, iters, warmup=WARMUP):
    return interleaved_medians([fn], iters, warmup)[0][0]


def interleaved_medians(fns, iters, warmup=WARMUP):
    """Runs fns round-robin warmup + iters times, each round starting one system later (A B C,
    B C A, C A B, ...) so that every system follows every other equally often: whatever a system
    leaves behind (cold caches, another runtime's threads still spinning) is not always paid by
    the same next one. For each, (median seconds, median seconds of it the calling thread waited
    for a CPU)."""
    times = [[] for _ in fns]
    waits = [[] for _ in fns]
    for i in range(warmup + iters):
        for j in range(len(fns)):
            k = (i + j) % len(fns)
            fn = fns[k]
            wait = _runqueue_wait()
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[k].append(elapsed)
                waits[k].append(_runqueue_wait() - wait)
    return [(statistics.median(t), statistics.median(w)) for t, w in zip(times, waits)]


def _status_kib(field):
    """A field of /proc/self/status in KiB (Linux), e.g. VmRSS or VmHWM."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_growth(step):
    """Growth (MiB) of the peak resident set over MEMORY_STEPS calls of step, from the state
    just before them: the kernel's VmHWM, reset first (clear_refs 5). Not ru_maxrss: after exec
    it also holds the parent's peak. None where /proc does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
    except OSError:
        return None
    for _ in range(MEMORY_STEPS):
        step()
    return (_status_kib("VmHWM") - before) / 1024


def alone_child(system, name, threads, iters, onnx_path):
    """Runs in a fresh process with only `system` imported; prints JSON {op: median seconds,
    "rss": peak RSS growth of the first training steps in MiB}."""
    set_threads(system, threads)
    B, T, I, H = CONFIGS[name].shape
    if system.startswith("fastgru"):
        ops, _ = fastgru_ops(B, T, I, H, "bfloat16" if system == "fastgru_bf16" else "float32")
    elif system.startswith("torch"):
        ops = torch_ops(B, T, I, H, autocast=system == "torch_bf16")
    else:
        ops, _ = onnxrt_ops(B, T, I, H, onnx_path, threads)
    result = {"rss": peak_rss_growth(ops["train"]) if "train" in ops else None}
    for op in SYSTEMS[system]:
        result[op] = median_seconds(ops[op], iters)
    print(json.dumps(result))


def run_alone(system, name, threads, iters, paths):
    """One fresh process timing `system` at this config: {op: seconds, "rss": MiB}, or None."""
    B, T, I, H = CONFIGS[name].shape
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if system == "core":
        cmd = [paths["bench_gru"], "--threads", str(threads), "--config", name, "--iters", str(iters)]
    elif system.startswith("onednn"):
        cmd = [paths["onednn"], str(B), str(T), str(I), str(H), str(iters)] + (
            ["bf16"] if system == "onednn_bf16" else []
        )
    else:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--alone-child",
            system,
            name,
            str(threads),
            str(iters),
            paths.get(f"onnx:{name}", ""),
        ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{system} at {name}, {threads} thread(s) failed:\n{out.stderr.strip()}")
    if system == "core":
        return parse_bench_gru(out.stdout, name)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if system.startswith("onednn"):
        result = {
            "fwdbwd": result["train"],
            "infer": result["infer"],
            "rss": result["peak_rss_mib"],
            "workspace": result["workspace_mib"],
            "version": result["version"],
        }
    return result


BENCH_GRU_ROWS = {
    "forward (inference)": "infer",
    "forward + backward (training)": "fwdbwd",
    "training step (fwd+bwd+adam+zero)": "train",
}


def parse_bench_gru(text, name):
    """{op: seconds} from bench_gru's table rows for config `name`."""
    result = {}
    for line in text.splitlines():
        fields = line[len(name) :].split()
        if not line.startswith(name + " ") or len(fields) < 3:
            continue
        what = line[8:46].strip()
        if what in BENCH_GRU_ROWS:
            result[BENCH_GRU_ROWS[what]] = float(line[46:].split()[0]) * 1e-3
    if set(result) != set(BENCH_GRU_ROWS.values()):
        raise SystemExit(f"bench_gru printed no complete table for {name}:\n{text}")
    return result


def run_interleaved(name, threads, iters, onnx_path, reverse, bf16=False):
    """fastgru, torch (and ONNX Runtime, and the bfloat16 runs) in this process, called in turn:
    {system: {op: seconds}}."""
    B, T, I, H = CONFIGS[name].shape
    f_ops, layer = fastgru_ops(B, T, I, H)
    t_ops = torch_ops(B, T, I, H, torch_gru_like(layer))
    systems = {"fastgru": f_ops, "torch": t_ops}
    if onnx_path:
        systems["onnxrt"], _ = onnxrt_ops(B, T, I, H, onnx_path, threads)
    if bf16:
        systems["fastgru_bf16"], layer_bf16 = fastgru_ops(B, T, I, H, "bfloat16")
        systems["torch_bf16"] = torch_ops(B, T, I, H, torch_gru_like(layer_bf16), autocast=True)
    result = {s: {} for s in systems}
    for op in ("train", "infer"):
        names = [s for s in systems if op in systems[s]]
        if reverse:
            names.reverse()
        for s, (t, wait) in zip(names, interleaved_medians([systems[s][op] for s in names], iters)):
            result[s][op] = t
            result[s][op + "_wait"] = wait
    return result


# -- core-to-core round trip -----------------------------------------------------------------------
def core_round_trip(bench_gru):
    """Nanoseconds for a cache line to go between two threads and back (`bench_gru --pingpong`),
    or None without bench_gru or a second CPU."""
    if not bench_gru or (os.cpu_count() or 1) < 2:
        return None
    out = subprocess.run([bench_gru, "--pingpong"], capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.startswith("core_round_trip_ns"):
        return float(out.stdout.split()[1])
    return None


# -- FMA peak --------------------------------------------------------------------------------------
def bench_gru_peaks(bench_gru):
    """{"fma": ..., "bf16": ...} one core's FLOP/s from `bench_gru --peak` (bf16 only where the CPU
    has bfloat16 units), or {} without bench_gru."""
    if not bench_gru:
        return {}
    out = subprocess.run([bench_gru, "--peak"], capture_output=True, text=True)
    names = {"fma_peak_gflops_per_core": "fma", "bf16_peak_gflops_per_core": "bf16"}
    peaks = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        key, _, value = line.partition(" ")
        if key in names:
            peaks[names[key]] = float(value) * 1e9
    return peaks


def measured_peak(args, peaks):
    """(one core's fp32 FMA peak in FLOP/s, how it was obtained); peaks: bench_gru_peaks'."""
    if args.peak is not None:
        return args.peak * 1e9, "given with --peak"
    if "fma" in peaks:
        return peaks["fma"], "measured by `bench_gru --peak` (FMAs of the active instruction set's vector width)"
    import torch

    torch.set_num_threads(1)
    a = torch.rand(2048, 2048)
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return (
        2.0 * 2048**3 / best,
        "ESTIMATE from a 2048x2048 torch matmul on 1 thread (a lower bound; pass --bench-gru for the FMA probe)",
    )


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- summaries and tables ----------------------------------------------------------------------------
class Runs:
    """Per (mode, system, config, threads, op): the medians of every repeat."""

    def __init__(self):
        self.values = {}

    def add(self, key, value):
        if value is not None:
            self.values.setdefault(key, []).append(value)

    def median(self, key):
        v = self.values.get(key)
        return statistics.median(v) if v else None

    def spread(self, key):
        """(max - min) / median of the repeats, in %."""
        v = self.values.get(key)
        if not v or len(v) < 2 or statistics.median(v) <= 0:
            return None
        return 100 * (max(v) - min(v)) / statistics.median(v)


def format_tables(runs, rows, peak_core, extra, bf16_peak_core=None):
    """[(title, head, body)] for the alone and interleaved measurements."""

    def ms(key, digits=2):
        m, s = runs.median(key), runs.spread(key)
        if m is None:
            return "-"
        return f"{m * 1e3:.{digits}f}" + (f" ({s:.0f}%)" if s is not None else "")

    def ratio(num, den):
        a, b = runs.median(num), runs.median(den)
        return f"{a / b:.2f}x" if a and b else "-"

    def rate(key, flops, threads):
        m = runs.median(key)
        if m is None:
            return "-"
        return f"{flops / m * 1e-9:.1f} ({100 * flops / m / (peak_core * threads):.0f}%)"

    def bf16_rate(key, flops, threads):
        """GFLOP/s (% of the float32 FMA peak, % of the bfloat16 units' peak)."""
        m = runs.median(key)
        if m is None or not bf16_peak_core:
            return rate(key, flops, threads)
        g = flops / m
        return f"{g * 1e-9:.1f} ({100 * g / (peak_core * threads):.0f}%, {100 * g / (bf16_peak_core * threads):.0f}%)"

    def overhead(py, core):
        a, b = runs.median(py), runs.median(core)
        return f"{100 * (a / b - 1):+.0f}%" if a and b else "-"

    def mib(key):
        m = runs.median(key)
        return "-" if m is None else f"{m:.1f}"

    train, fwdbwd, infer, inter, bf16 = [], [], [], [], []
    for name, n in rows:
        c = CONFIGS[name]
        label, f = f"{name} ({','.join(map(str, c.shape))})", forward_flops(*c.shape)

        def k(system, op, mode="alone"):
            return (mode, system, name, n, op)

        train.append(
            [
                label,
                str(n),
                ms(k("fastgru", "train")),
                ms(k("torch", "train")),
                ratio(k("torch", "train"), k("fastgru", "train")),
                ms(k("core", "train")),
                overhead(k("fastgru", "train"), k("core", "train")),
                rate(k("fastgru", "train"), 3 * f, n),
                rate(k("torch", "train"), 3 * f, n),
                mib(k("fastgru", "rss")),
                mib(k("torch", "rss")),
            ]
        )
        fwdbwd.append(
            [
                label,
                str(n),
                ms(k("fastgru", "fwdbwd")),
                ms(k("core", "fwdbwd")),
                overhead(k("fastgru", "fwdbwd"), k("core", "fwdbwd")),
                ms(k("onednn", "fwdbwd")),
                ratio(k("onednn", "fwdbwd"), k("fastgru", "fwdbwd")),
                ratio(k("onednn", "fwdbwd"), k("core", "fwdbwd")),
                rate(k("fastgru", "fwdbwd"), 3 * f, n),
                rate(k("onednn", "fwdbwd"), 3 * f, n),
                mib(k("onednn", "rss")),
                mib(k("onednn", "workspace")),
            ]
        )
        infer.append(
            [
                label,
                str(n),
                ms(k("fastgru", "infer"), 3),
                ms(k("core", "infer"), 3),
                overhead(k("fastgru", "infer"), k("core", "infer")),
                ms(k("torch", "infer"), 3),
                ms(k("onnxrt", "infer"), 3),
                ms(k("onednn", "infer"), 3),
                ratio(k("torch", "infer"), k("fastgru", "infer")),
                ratio(k("onnxrt", "infer"), k("fastgru", "infer")),
                ratio(k("onednn", "infer"), k("fastgru", "infer")),
                rate(k("fastgru", "infer"), f, n),
            ]
        )
        inter.append(
            [
                label,
                str(n),
                ms(k("fastgru", "train", "inter")),
                ms(k("torch", "train", "inter")),
                ratio(k("torch", "train", "inter"), k("fastgru", "train", "inter")),
                ratio(k("fastgru", "train", "inter"), k("fastgru", "train")),
                ms(k("fastgru", "train_wait", "inter")),
                ms(k("fastgru", "infer", "inter"), 3),
                ms(k("torch", "infer", "inter"), 3),
                ms(k("onnxrt", "infer", "inter"), 3),
                ratio(k("fastgru", "infer", "inter"), k("fastgru", "infer")),
                ms(k("fastgru", "infer_wait", "inter"), 3),
                ratio(k("onnxrt", "infer", "inter"), k("onnxrt", "infer")),
            ]
        )
        bf16.append(
            [
                label,
                str(n),
                ms(k("fastgru", "train")),
                ms(k("fastgru_bf16", "train")),
                ratio(k("fastgru", "train"), k("fastgru_bf16", "train")),
                ms(k("torch_bf16", "train")),
                ratio(k("torch_bf16", "train"), k("fastgru_bf16", "train")),
                ms(k("fastgru", "infer"), 3),
                ms(k("fastgru_bf16", "infer"), 3),
                ratio(k("fastgru", "infer"), k("fastgru_bf16", "infer")),
                ms(k("torch_bf16", "infer"), 3),
                ratio(k("torch_bf16", "infer"), k("fastgru_bf16", "infer")),
                ms(k("fastgru_bf16", "fwdbwd")),
                ms(k("onednn_bf16", "fwdbwd")),
                ratio(k("onednn_bf16", "fwdbwd"), k("fastgru_bf16", "fwdbwd")),
                ms(k("onednn_bf16", "infer"), 3),
                ratio(k("onednn_bf16", "infer"), k("fastgru_bf16", "infer")),
                bf16_rate(k("fastgru_bf16", "fwdbwd"), 3 * f, n),
                bf16_rate(k("fastgru_bf16", "infer"), f, n),
                ratio(k("torch_bf16", "train", "inter"), k("fastgru_bf16", "train", "inter")),
                ratio(k("torch_bf16", "infer", "inter"), k("fastgru_bf16", "infer", "inter")),
            ]
        )
    tables = [
        (
            "Training step (forward + backward + Adam + zero_grad), each system alone in a fresh process",
            [
                "config (B,T,I,H)",
                "threads",
                "fastgru ms",
                "torch ms",
                "torch/fastgru",
                "fastgru C++ core ms",
                "Python layer over core",
                "fastgru GFLOP/s (% peak)",
                "torch GFLOP/s (% peak)",
                "fastgru peak RSS +MiB",
                "torch peak RSS +MiB",
            ],
            train,
        ),
        (
            "Forward + backward (no optimizer: oneDNN's training work), alone",
            [
                "config (B,T,I,H)",
                "threads",
                "fastgru ms",
                "fastgru C++ core ms",
                "Python layer over core",
                "oneDNN ms",
                "oneDNN/fastgru",
                "oneDNN/core",
                "fastgru GFLOP/s (% peak)",
                "oneDNN GFLOP/s (% peak)",
                "oneDNN peak RSS +MiB",
                "oneDNN workspace MiB",
            ],
            fwdbwd,
        ),
        (
            "Inference (forward only), alone",
            [
                "config (B,T,I,H)",
                "threads",
                "fastgru ms",
                "fastgru C++ core ms",
                "Python layer over core",
                "torch ms",
                "onnxrt ms",
                "oneDNN ms",
                "torch/fastgru",
                "onnxrt/fastgru",
                "oneDNN/fastgru",
                "fastgru GFLOP/s (% peak)",
            ],
            infer,
        ),
        (
            "Interleaved in one process (fastgru, torch"
            + (", ONNX Runtime" if extra["onnx"] else "")
            + " called in turn); interleaved/alone > 1 means slower beside the others",
            [
                "config (B,T,I,H)",
                "threads",
                "fastgru train ms",
                "torch train ms",
                "torch/fastgru",
                "fastgru train interleaved/alone",
                "of fastgru train: waiting for a CPU ms",
                "fastgru infer ms",
                "torch infer ms",
                "onnxrt infer ms",
                "fastgru infer interleaved/alone",
                "of fastgru infer: waiting for a CPU ms",
                "onnxrt infer interleaved/alone",
            ],
            inter,
        ),
    ]
    if extra["bf16"]:
        tables.append(
            (
                "bfloat16 products: fastgru compute_dtype='bfloat16' against its float32, torch.nn.GRU under "
                "torch.autocast('cpu', torch.bfloat16) and oneDNN's bf16 GRU; alone, and the ratios interleaved; "
                "GFLOP/s (% of the float32 FMA peak, % of the bfloat16 peak)",
                [
                    "config (B,T,I,H)",
                    "threads",
                    "fastgru f32 train ms",
                    "fastgru bf16 train ms",
                    "f32/bf16",
                    "torch autocast train ms",
                    "torch autocast/fastgru bf16",
                    "fastgru f32 infer ms",
                    "fastgru bf16 infer ms",
                    "f32/bf16",
                    "torch autocast infer ms",
                    "torch autocast/fastgru bf16",
                    "fastgru bf16 fwd+bwd ms",
                    "oneDNN bf16 fwd+bwd ms",
                    "oneDNN bf16/fastgru bf16",
                    "oneDNN bf16 infer ms",
                    "oneDNN bf16/fastgru bf16",
                    "fastgru bf16 fwd+bwd GFLOP/s",
                    "fastgru bf16 infer GFLOP/s",
                    "interleaved: torch autocast/fastgru bf16 train",
                    "interleaved: ... infer",
                ],
                bf16,
            )
        )
    return tables


def render(title, head, body, markdown):
    lines = []
    if markdown:
        lines.append(f"**{title}**\n")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" for _ in head) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in body]
    else:
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        lines.append(title)
        lines.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(lines)


def _executable(path, what):
    if path and not os.access(path, os.X_OK):
        raise SystemExit(f"{what}: {path} is not an executable program")
    return path


# -- the run -----------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--iters",
        type=int,
        help="timed iterations per measurement (default: per config, "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items())
        + f"), after {WARMUP} warm-up",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of every measurement, the order of the systems reversed every other run (default 3)",
    )
    parser.add_argument("--markdown", action="store_true", help="print README-ready markdown tables")
    parser.add_argument(
        "--bench-gru",
        default=os.environ.get("FASTGRU_BENCH_GRU"),
        help="the bench_gru program: FMA peak and the C++ core's times (default: $FASTGRU_BENCH_GRU)",
    )
    parser.add_argument(
        "--onednn",
        default=os.environ.get("FASTGRU_ONEDNN_GRU"),
        help="the onednn_gru program (default: $FASTGRU_ONEDNN_GRU, else beside bench_gru if built)",
    )
    parser.add_argument("--peak", type=float, help="one core's fp32 FMA peak in GFLOP/s, instead of measuring")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--no-alone", action="store_true", help="skip the fresh-process runs")
    parser.add_argument("--no-interleaved", action="store_true", help="skip the one-process interleaved runs")
    parser.add_argument("--bf16", action="store_true", help="add fastgru's bfloat16 products and torch's autocast")
    parser.add_argument("--alone-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.alone_child:
        system, name, threads, iters, onnx_path = args.alone_child
        return alone_child(system, name, int(threads), int(iters), onnx_path or None)
    if any(n < 1 for n in args.threads) or (args.iters is not None and args.iters < 1) or args.repeats < 1:
        parser.error("--threads, --iters and --repeats must be >= 1")
    _executable(args.bench_gru, "--bench-gru")
    if args.onednn is None and args.bench_gru:
        beside = os.path.join(os.path.dirname(args.bench_gru), "onednn_gru")
        args.onednn = beside if os.access(beside, os.X_OK) else None
    _executable(args.onednn, "--onednn")

    import torch

    import fastgru

    use_onnx = not args.no_onnx and onnx_available()
    peaks = bench_gru_peaks(args.bench_gru)
    peak_core, peak_source = measured_peak(args, peaks)
    load_before = os.getloadavg()[0]
    systems = (
        ["fastgru", "torch"]
        + (["onnxrt"] if use_onnx else [])
        + (["core"] if args.bench_gru else [])
        + (["onednn"] if args.onednn else [])
        + (list(BF16_SYSTEMS) if args.bf16 else [])
        + (["onednn_bf16"] if args.bf16 and args.onednn else [])
    )
    bf16_peak_core = peaks.get("bf16") if args.bf16 else None
    runs, rows, versions, round_trips = Runs(), [], {}, []
    with tempfile.TemporaryDirectory() as tmpdir:
        paths = {"bench_gru": args.bench_gru, "onednn": args.onednn}
        for name in args.configs:
            if use_onnx:
                paths[f"onnx:{name}"] = os.path.join(tmpdir, f"{name}.onnx")
                export_onnx(name, paths[f"onnx:{name}"])
            for n in args.threads:
                torch.set_num_threads(n)
                fastgru.set_num_threads(n)
                check_agreement(name, n, paths.get(f"onnx:{name}"))
        for n in args.threads:
            torch.set_num_threads(n)
            fastgru.set_num_threads(n)
            for name in args.configs:
                iters = args.iters or DEFAULT_ITERS.get(name, 10)
                round_trips.append((f"{name}/{n}", core_round_trip(args.bench_gru)))
                for rep in range(args.repeats):
                    if not args.no_alone:
                        for system in systems if rep % 2 == 0 else systems[::-1]:
                            result = run_alone(system, name, n, iters, paths)
                            versions.setdefault(system, result.pop("version", None))
                            for op, value in result.items():
                                runs.add(("alone", system, name, n, op), value)
                    if not args.no_interleaved:
                        result = run_interleaved(
                            name, n, iters, paths.get(f"onnx:{name}"), reverse=rep % 2 == 1, bf16=args.bf16
                        )
                        for system, ops in result.items():
                            for op, value in ops.items():
                                runs.add(("inter", system, name, n, op), value)
                rows.append((name, n))
                print(f"  done {name}, {n} thread(s)", file=sys.stderr, flush=True)

    load_after = os.getloadavg()[0]
    round_trips.append(("end", core_round_trip(args.bench_gru)))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    ort_version = "not used"
    if use_onnx:
        import onnxruntime

        ort_version = onnxruntime.__version__
    iters_text = f"{args.iters}" if args.iters else ", ".join(f"{DEFAULT_ITERS[c]} ({c})" for c in args.configs)
    info = [
        f"command: `{command}`",
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs; fastgru {fastgru.__version__} isa "
        f"{fastgru.active_isa()}, torch {torch.__version__}, onnxruntime {ort_version}, oneDNN "
        f"{versions.get('onednn') or 'not used'}, Python {platform.python_version()}",
        f"1-minute load average: {load_before:.1f} at the start, {load_after:.1f} at the end"
        + (
            " (above the thread count: other processes competed for the cores)"
            if max(load_before, load_after) > max(args.threads)
            else ""
        ),
        f"fp32 FMA peak: {peak_core * 1e-9:.1f} GFLOP/s per core, {peak_source}; "
        f"% peak = GFLOP/s / (per-core peak x threads)"
        + (
            f"; bfloat16 units' peak {bf16_peak_core * 1e-9:.1f} GFLOP/s per core (`bench_gru --peak`)"
            if bf16_peak_core
            else ""
        ),
        f"each time: the median over {args.repeats} runs (order of systems reversed every other run) of the "
        f"median of {iters_text} iterations after {WARMUP} warm-up; (n%) after a time = (max - min) / median "
        "of those runs; ratio > 1 means fastgru is faster",
        "GFLOP/s counts forward = 2*T*B*3H*(I+H), training step and forward + backward = 3x forward",
        *(
            [
                "core-to-core round trip (`bench_gru --pingpong`: a cache line between two threads and back, "
                "ns) before each config/threads and at the end: "
                + ", ".join(f"{where} {ns:.0f}" for where, ns in round_trips if ns is not None)
                + "; 2-thread times follow it where a virtual machine moves its CPUs apart"
            ]
            if any(ns is not None for _, ns in round_trips)
            else []
        ),
        f"peak RSS +MiB: growth of the peak resident set over the first {MEMORY_STEPS} training steps "
        "(oneDNN: forward + backward) in the fresh process (VmHWM - VmRSS before the steps)",
    ]
    print("\n".join(("- " if args.markdown else "") + line for line in info))
    tables = format_tables(runs, rows, peak_core, {"onnx": use_onnx, "bf16": args.bf16}, bf16_peak_core)
    for title, head, body in tables:
        print("\n" + render(title, head, body, args.markdown))


if __name__ == "__main__":
    main()
