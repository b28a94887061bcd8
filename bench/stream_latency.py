"""Streaming latency: microseconds per step of fastgru.GRU.step against ONNX Runtime running the
same layer exported by fastgru.onnx.export, one step at a time with the state fed back, and of
the layer's int8 copy (fastgru.quantize: int8 weights, a quarter of the bytes a step reads).

    python bench/stream_latency.py [--input-size 128] [--hidden-size 256] [--batch 1] [--threads 1]
                                   [--rounds 41] [--steps 200] [--reset-before] [--markdown]

Both sides do what a streaming service does per input frame, Python call included: fastgru
`y, h = layer.step(x_t, h)`; ONNX Runtime `y, h = session.run(None, {"x": x_t[None], "h0": h})`
on the exported file (inputs x (1, B, I) and h0 (1, B, H)). Rounds of --steps steps alternate
between the two (A B, then B A, ...) in one process with the same thread count; the medians over rounds
are reported, with the ratio fastgru / ONNX Runtime (below 1: fastgru is faster). Wall-clock time
is what a user sees; the thread's CPU time (time.thread_time) is printed beside it because on a
shared machine other processes inflate wall-clock rounds at random, while CPU time counts only
the work done. Before timing, both run the same 50-step sequence and must agree (within 1e-5)
with each other and with fastgru's whole-sequence forward; the int8 copy's steps must agree
with its own forward (1e-5) and with the float layer's within 2e-2 (relative L2).
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort

import fastgru
import fastgru.onnx


def make_session(layer, threads):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "layer.onnx")
        fastgru.onnx.export(layer, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def check(layer, session, x):
    """Both stepped through x (T, B, I) must match fastgru's forward over the whole sequence."""
    want_y, want_h = layer(x)
    h_fastgru = h_onnx = None
    for t, x_t in enumerate(x):
        y_fastgru, h_fastgru = layer.step(x_t, h_fastgru)
        feeds = {"x": x_t[None], "h0": np.zeros_like(want_h) if h_onnx is None else h_onnx}
        y_onnx, h_onnx = session.run(None, feeds)
        for got in (y_fastgru, y_onnx[0]):
            assert np.abs(got - want_y[t]).max() < 1e-5, "a step differs from the whole-sequence forward"
    assert np.abs(h_fastgru - want_h).max() < 1e-5 and np.abs(h_onnx - want_h).max() < 1e-5


def check_int8(layer, int8, x):
    """int8's steps through x against its own forward, and its forward against the float layer's."""
    want_y, _ = int8(x)
    h = None
    for t, x_t in enumerate(x):
        y, h = int8.step(x_t, h)
        assert np.abs(y - want_y[t]).max() < 1e-5, "an int8 step differs from the int8 forward"
    float_y, _ = layer(x)
    assert np.linalg.norm(want_y - float_y) / np.linalg.norm(float_y) < 2e-2, "int8 is far from float32"


def round_fastgru(layer, xs, h):
    start, cpu = time.perf_counter(), time.thread_time()
    for x_t in xs:
        _, h = layer.step(x_t, h)
    return time.perf_counter() - start, time.thread_time() - cpu


def round_onnx(session, xs, h):
    start, cpu = time.perf_counter(), time.thread_time()
    for x_t in xs:
        _, h = session.run(None, {"x": x_t, "h0": h})
    return time.perf_counter() - start, time.thread_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--reset-before", action="store_true", help="reset_after=False (ONNX linear_before_reset=0)")
    parser.add_argument("--markdown", action="store_true", help="also print a README table row")
    args = parser.parse_args()

    I, H, B = args.input_size, args.hidden_size, args.batch
    fastgru.set_num_threads(args.threads)
    layer = fastgru.GRU(I, H, reset_after=not args.reset_before, seed=0).eval()
    session = make_session(layer, args.threads)
    int8 = fastgru.quantize(layer)
    rng = np.random.default_rng(0)
    check(layer, session, rng.uniform(-1, 1, (50, B, I)).astype(np.float32))
    check_int8(layer, int8, rng.uniform(-1, 1, (50, B, I)).astype(np.float32))

    xs = rng.uniform(-1, 1, (args.steps, B, I)).astype(np.float32)
    xs_onnx = xs[:, None]  # (steps, 1, B, I): T = 1 per call
    h_fastgru = np.zeros((1, B, H), np.float32)
    h_onnx = np.zeros((1, B, H), np.float32)
    load_before = os.getloadavg()[0]
    times = {"fastgru": [], "onnxruntime": [], "fastgru int8": []}
    for r in range(args.rounds + 2):  # two warm-up rounds
        order = [
            ("fastgru", lambda: round_fastgru(layer, xs, h_fastgru)),
            ("onnxruntime", lambda: round_onnx(session, xs_onnx, h_onnx)),
            ("fastgru int8", lambda: round_fastgru(int8, xs, h_fastgru)),
        ]
        for name, run in order if r % 2 == 0 else order[::-1]:
            wall, cpu = run()
            if r >= 2:
                times[name].append((wall / args.steps * 1e6, cpu / args.steps * 1e6))
    load_after = os.getloadavg()[0]

    def median(name, i):
        return statistics.median(t[i] for t in times[name])

    print(
        f"fastgru {fastgru.__version__} (isa {fastgru.active_isa()}), onnxruntime {ort.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} logical CPUs"
    )
    print(
        f"B={B} I={I} H={H} reset_after={not args.reset_before} threads={args.threads}; median of "
        f"{args.rounds} interleaved rounds of {args.steps} steps; 1-minute load average {load_before:.1f} "
        f"before, {load_after:.1f} after"
    )
    # int8: the packed weights (zero-padded to whole panels) and row scales that each step reads.
    weight_bytes = {"float32": 4 * 3 * H * (I + H), "int8": sum(a.nbytes for a in int8._int8_kernel_args())}
    print(
        f"weights read per step: float32 {weight_bytes['float32'] / 1e6:.2f} MB, int8 "
        f"{weight_bytes['int8'] / 1e6:.2f} MB (with the row scales)"
    )
    for i, what in enumerate(["wall-clock", "thread CPU time"]):
        f, o, q = median("fastgru", i), median("onnxruntime", i), median("fastgru int8", i)
        print(
            f"{what:16s} us/step: fastgru {f:8.2f}   onnxruntime {o:8.2f}   fastgru int8 {q:8.2f}   "
            f"fastgru/onnxruntime {f / o:.2f}   int8/onnxruntime {q / o:.2f}   int8/fastgru {q / f:.2f}"
        )
        print(
            f"{'':16s} weight bytes per second: float32 {weight_bytes['float32'] / f * 1e-3:.1f} GB/s, int8 "
            f"{weight_bytes['int8'] / q * 1e-3:.1f} GB/s"
        )
    if args.markdown:
        f, o, q, fc, oc, qc = (median(n, i) for i in (0, 1) for n in ("fastgru", "onnxruntime", "fastgru int8"))
        print(
            f"| B={B}, I={I}, H={H}, {args.threads} thread | {f:.1f} | {o:.1f} | {f / o:.2f} | {q:.1f} | "
            f"{q / o:.2f} | {fc:.1f} | {oc:.1f} | {qc:.1f} |"
        )


if __name__ == "__main__":
    main()
