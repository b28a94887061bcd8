"""fastgru vs torch.nn.GRU + torch.optim.Adam (and ONNX Runtime for inference), by the protocol of
BENCH.md: same process, interleaved A B A B, same thread count, median times, ratios.

    python bench/compare.py [--configs small medium ...] [--threads 1 2] [--iters N] [--markdown]
                            [--bench-gru PATH | --peak GFLOPS] [--no-onnx] [--no-memory]

Before any timing, each configuration is checked: fastgru's y, h_n, dx and weight gradients
against torch's (and ONNX Runtime's y against torch's), so wrong code is never timed.
Peak memory of the training step is measured for each system in a fresh subprocess
(the kernel's high-water mark VmHWM, reset just before the steps, minus VmRSS then). See bench/README.md.
"""

import argparse
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

# BENCH.md's standard configurations: name -> (B, T, I, H); default iterations (fewer where one
# step is long, so the default run takes a few minutes on 2 cores).
CONFIGS = {
    "small": (32, 50, 32, 64),
    "medium": (64, 100, 128, 256),
    "large": (64, 100, 256, 512),
    "b1": (1, 100, 128, 256),
    "long": (16, 1000, 64, 128),
}
DEFAULT_ITERS = {"small": 40, "medium": 15, "large": 8, "b1": 40, "long": 8}
WARMUP = 2
MEMORY_STEPS = 3
LR = 1e-3


def forward_flops(B, T, I, H):
    """BENCH.md's GEMM-bound count: forward = 2*T*B*3H*(I+H); a training step is 3x that."""
    return 2.0 * T * B * 3 * H * (I + H)


def make_data(B, T, I, H, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    dy = rng.uniform(-1, 1, (T, B, H)).astype(np.float32)
    return x, dy


def make_systems(B, T, I, H):
    """fastgru layer + Adam and torch GRU + Adam with the same weights, time-major."""
    import torch

    import fastgru

    layer = fastgru.GRU(I, H, dtype="float32", seed=0)
    gru = torch.nn.GRU(I, H)
    with torch.no_grad():
        for name, value in layer.state_dict().items():
            getattr(gru, name).copy_(torch.from_numpy(np.array(value)))
    return layer, fastgru.Adam(layer, lr=LR), gru, torch.optim.Adam(gru.parameters(), lr=LR)


# -- the operations being timed --------------------------------------------------------------
def fastgru_train_step(layer, opt, x, dy):
    layer(x)
    layer.backward(dy)
    opt.step()
    opt.zero_grad()


def torch_train_step(gru, opt, x, dy):
    y, _ = gru(x)
    y.backward(dy)
    opt.step()
    opt.zero_grad()


def torch_infer(gru, x):
    import torch

    with torch.inference_mode():
        return gru(x)


# -- correctness gate ------------------------------------------------------------------------
def check_agreement(name, layer, gru, session, x, dy):
    """Raises SystemExit unless fastgru (and ONNX Runtime) agree with torch on this config."""
    import torch

    def close(what, got, want, rtol=1e-4, atol=1e-5):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = max(1.0, float(np.abs(want).max()))
        if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol * scale):
            err = np.abs(got - want).max() if got.shape == want.shape else "shape"
            raise SystemExit(f"{name}: {what} differs from torch (max |diff| {err}); not timing wrong code")

    layer.train()
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
    layer.zero_grad()
    gru.zero_grad()
    layer.eval()
    close("y (eval)", layer(x)[0], yt.detach().numpy())
    if session is not None:
        close("y (onnxruntime)", session.run(None, {"x": x})[0], yt.detach().numpy())


# -- ONNX Runtime ----------------------------------------------------------------------------
def onnx_available():
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(gru, x, path):
    """The torch GRU as one ONNX GRU node (TorchScript exporter: no onnxscript needed)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(gru, (torch.from_numpy(x),), path, input_names=["x"],
                          output_names=["y", "h_n"], opset_version=17, dynamo=False)


def onnx_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# -- timing ----------------------------------------------------------------------------------
def interleaved_medians(fns, iters, warmup=WARMUP):
    """Runs fns round-robin (A B A B ...) warmup + iters times; median seconds of each."""
    times = [[] for _ in fns]
    for i in range(warmup + iters):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[k].append(elapsed)
    return [statistics.median(t) for t in times]


def _status_kib(field):
    """A field of /proc/self/status in KiB (Linux), e.g. VmRSS or VmHWM."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(system, config, threads):
    """Runs in a fresh process; prints the growth (MiB) of the peak resident set over
    MEMORY_STEPS training steps of `system`, from its state just before them.

    The high-water mark is the kernel's VmHWM, reset just before the steps (clear_refs 5).
    getrusage's ru_maxrss cannot be used as is: after exec it also holds the parent's peak
    (the process that spawned us, with every config's data loaded), which hides the steps."""
    if system == "fastgru":
        import fastgru
        fastgru.set_num_threads(threads)
    else:
        import torch
        torch.set_num_threads(threads)
    B, T, I, H = CONFIGS[config]
    x, dy = make_data(B, T, I, H)
    if system == "fastgru":
        layer = fastgru.GRU(I, H, dtype="float32", seed=0)
        opt = fastgru.Adam(layer, lr=LR)
        step = lambda: fastgru_train_step(layer, opt, x, dy)  # noqa: E731
    else:
        gru = torch.nn.GRU(I, H)
        opt = torch.optim.Adam(gru.parameters(), lr=LR)
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
        step = lambda: torch_train_step(gru, opt, xt, dyt)  # noqa: E731
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    for _ in range(MEMORY_STEPS):
        step()
    print(f"{(_status_kib('VmHWM') - before) / 1024:.2f}")


def measure_memory(system, config, threads):
    """Growth of the peak resident set (MiB) over the training steps of `system`, measured in a
    fresh process (None where /proc is not available)."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", system, config,
                          str(threads)], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"memory measurement of {system} failed:\n{out.stderr.strip()}", file=sys.stderr)
        return None
    return float(out.stdout)


# -- FMA peak --------------------------------------------------------------------------------
def measured_peak(args):
    """(one core's fp32 FMA peak in FLOP/s, how it was obtained)."""
    if args.peak is not None:
        return args.peak * 1e9, "given with --peak (bench_gru's FMA probe)"
    path = args.bench_gru or os.environ.get("FASTGRU_BENCH_GRU")
    if path and os.access(path, os.X_OK):
        out = subprocess.run([path, "--peak"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.startswith("fma_peak_gflops_per_core"):
            return float(out.stdout.split()[1]) * 1e9, f"measured by `{os.path.basename(path)} --peak` (AVX2 FMA probe)"
    import torch

    torch.set_num_threads(1)
    a = torch.rand(2048, 2048)
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return (2.0 * 2048 ** 3 / best,
            "ESTIMATE from a 2048x2048 torch matmul on 1 thread (a lower bound; pass --bench-gru for the FMA probe)")


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- the run ---------------------------------------------------------------------------------
def run_config(name, threads, iters, use_onnx, use_memory, tmpdir):
    import torch

    B, T, I, H = CONFIGS[name]
    x, dy = make_data(B, T, I, H)
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    layer, opt_f, gru, opt_t = make_systems(B, T, I, H)
    session = None
    if use_onnx:
        path = os.path.join(tmpdir, f"{name}.onnx")
        if not os.path.exists(path):
            export_onnx(gru, x, path)
        session = onnx_session(path, threads)
    check_agreement(name, layer, gru, session, x, dy)

    layer.train()
    train_f, train_t = interleaved_medians(
        [lambda: fastgru_train_step(layer, opt_f, x, dy), lambda: torch_train_step(gru, opt_t, xt, dyt)], iters)
    layer.eval()
    infer = [lambda: layer(x), lambda: torch_infer(gru, xt)]
    if session is not None:
        infer.append(lambda: session.run(None, {"x": x}))
    infer_times = interleaved_medians(infer, iters)
    row = {"config": name, "threads": threads, "flops": forward_flops(B, T, I, H),
           "train": (train_f, train_t), "infer": infer_times}
    if use_memory:
        row["memory"] = (measure_memory("fastgru", name, threads), measure_memory("torch", name, threads))
    return row


def format_tables(rows, peak_core):
    def pct(flops, seconds, threads):
        rate = flops / seconds
        return f"{rate * 1e-9:.1f} ({100 * rate / (peak_core * threads):.0f}%)"

    train_head = ["config (B,T,I,H)", "threads", "fastgru ms", "torch ms", "torch/fastgru",
                  "fastgru GFLOP/s (% peak)", "torch GFLOP/s (% peak)", "fastgru peak RSS +MiB", "torch peak RSS +MiB"]
    infer_head = ["config (B,T,I,H)", "threads", "fastgru ms", "torch ms", "torch/fastgru", "onnxrt ms",
                  "onnxrt/fastgru", "fastgru GFLOP/s (% peak)", "torch GFLOP/s (% peak)", "onnxrt GFLOP/s (% peak)"]
    train, infer = [], []
    for r in rows:
        label = f"{r['config']} ({','.join(map(str, CONFIGS[r['config']]))})"
        n, f = r["threads"], r["flops"]
        tf, tt = r["train"]
        mem = r.get("memory")
        train.append([label, str(n), f"{tf * 1e3:.2f}", f"{tt * 1e3:.2f}", f"{tt / tf:.2f}x",
                      pct(3 * f, tf, n), pct(3 * f, tt, n),
                      _mib(mem[0]) if mem else "-", _mib(mem[1]) if mem else "-"])
        fi, ti = r["infer"][:2]
        oi = r["infer"][2] if len(r["infer"]) > 2 else None
        infer.append([label, str(n), f"{fi * 1e3:.3f}", f"{ti * 1e3:.3f}", f"{ti / fi:.2f}x",
                      f"{oi * 1e3:.3f}" if oi else "-", f"{oi / fi:.2f}x" if oi else "-",
                      pct(f, fi, n), pct(f, ti, n), pct(f, oi, n) if oi else "-"])
    return [("Training step (forward + backward + Adam + zero_grad)", train_head, train),
            ("Inference (forward only)", infer_head, infer)]


def _mib(value):
    return "-" if value is None else f"{value:.1f}"


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--iters", type=int, help="timed iterations per system (default: per config, "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items()) + f"), after {WARMUP} warm-up")
    parser.add_argument("--markdown", action="store_true", help="print README-ready markdown tables")
    parser.add_argument("--bench-gru", help="path of the bench_gru program, to measure the FMA peak with "
                        "its probe (default: $FASTGRU_BENCH_GRU)")
    parser.add_argument("--peak", type=float, help="one core's fp32 FMA peak in GFLOP/s, instead of measuring")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-child", nargs=3, metavar=("SYSTEM", "CONFIG", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        system, config, threads = args.memory_child
        return memory_child(system, config, int(threads))
    if any(n < 1 for n in args.threads) or (args.iters is not None and args.iters < 1):
        parser.error("--threads and --iters must be >= 1")

    import torch

    import fastgru

    use_onnx = not args.no_onnx and onnx_available()
    peak_core, peak_source = measured_peak(args)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for n in args.threads:
            torch.set_num_threads(n)
            fastgru.set_num_threads(n)
            for name in args.configs:
                rows.append(run_config(name, n, args.iters or DEFAULT_ITERS[name], use_onnx,
                                       not args.no_memory, tmpdir))
                print(f"  done {name}, {n} thread(s)", file=sys.stderr, flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    ort_version = "not used"
    if use_onnx:
        import onnxruntime
        ort_version = onnxruntime.__version__
    cpu = _cpu_name()
    info = [f"command: `{command}`",
            f"machine: {cpu}, {os.cpu_count()} logical CPUs; fastgru {fastgru.__version__} isa {fastgru.active_isa()}, "
            f"torch {torch.__version__}, onnxruntime {ort_version}, Python {platform.python_version()}",
            f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
            f"(above the thread count: other processes competed for the cores)",
            f"fp32 FMA peak: {peak_core * 1e-9:.1f} GFLOP/s per core, {peak_source}; "
            f"% peak = GFLOP/s / (per-core peak x threads)",
            "median of " + (f"{args.iters}" if args.iters else ", ".join(f"{DEFAULT_ITERS[c]} ({c})" for c in args.configs)) +
            f" interleaved iterations after {WARMUP} warm-up; ratio > 1 means fastgru is faster; "
            "GFLOP/s counts forward = 2*T*B*3H*(I+H), training step = 3x forward",
            f"peak RSS +MiB: growth of the peak resident set over {MEMORY_STEPS} training steps, "
            "each system in a fresh process (VmHWM - VmRSS before the steps)"]
    if args.markdown:
        print("\n".join("- " + line for line in info))
    else:
        print("\n".join(info))
    for title, head, body in format_tables(rows, peak_core):
        print("\n" + render(title, head, body, args.markdown))


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
