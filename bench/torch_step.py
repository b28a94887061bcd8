"""A full PyTorch training step with torch.nn.GRU vs fastgru.torch.GRU, and with fastgru's own
layer and model for reference, by the protocol of bench/README.md: same process, interleaved
(A B C D, B C D A, ...: each round starts one system later), same thread count, median times,
ratios from the same run.

    python bench/torch_step.py [--configs small medium ...] [--threads 1 2] [--iters N]
                               [--no-packed] [--own-pool] [--fused-adam] [--markdown]

The step, for each system (float32, 1 layer, reset-after, time-major (T, B, I) input):
  nn.GRU, fastgru.torch: y, _ = gru(x); loss = mse(head(y), target); opt.zero_grad();
                         loss.backward(); opt.step()      (head = nn.Linear(H, 1) on every step,
                         opt = torch.optim.Adam over the GRU and the head)
  fastgru layer:         the same step with fastgru.GRU on NumPy arrays in place of the module
                         (see LayerStep): no custom operator, no autograd around the GRU
  fastgru model:         fastgru.GRUModel + fastgru.losses + fastgru.Adam, no torch at all
"packed" rows give the GRU a PackedSequence of the same batch with lengths drawn uniformly from
[T/4, T] (the same lengths for every system; fastgru's layer and model get them as `lengths`)
and average the loss over the valid steps.
ratio = nn.GRU time / system time; "glue" = ratio(fastgru.torch) / ratio(fastgru layer): the
share of the layer's speed-up that survives the custom operators, autograd and tensor plumbing
of fastgru.torch. --own-pool keeps fastgru's regions on its own thread pool instead of torch's
OpenMP threads (fastgru.torch.share_torch_threads(False)). --fused-adam gives every
torch.optim.Adam (nn.GRU's, fastgru.torch's, the heads') fused=True, torch's one-kernel Adam,
as a user who wants a fast step would: the optimizer is then no longer most of the glue at small
sizes. Before timing, one step of fastgru.torch is checked against nn.GRU's (same
loss and gradients), so wrong code is never timed.
"""

import argparse
import os
import platform
import statistics
import sys

import numpy as np
import torch
from compare import DEFAULT_ITERS, LR, interleaved_medians
from configs import CONFIGS
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import fastgru
import fastgru.torch

SYSTEMS = ("nn.GRU", "fastgru.torch", "fastgru layer", "fastgru model")
TORCH_ADAM = {"lr": LR}  # every torch.optim.Adam's options; --fused-adam adds fused=True


def make_batch(B, T, I, packed, seed=0):
    """x (T, B, I), target (T, B, 1) and lengths (B,) (all T unless packed), float32."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.uniform(-1, 1, (T, B, I)).astype(np.float32))
    target = torch.from_numpy(rng.uniform(-1, 1, (T, B, 1)).astype(np.float32))
    lengths = rng.integers(max(1, T // 4), T + 1, B) if packed else np.full(B, T)
    return x, target, torch.from_numpy(lengths.astype(np.int64))


class TorchStep:
    """One training step of an nn.GRU-like module + nn.Linear head + MSE + Adam."""

    def __init__(self, gru, head, x, target, lengths, packed):
        self.gru, self.head = gru, head
        self.opt = torch.optim.Adam(list(gru.parameters()) + list(head.parameters()), **TORCH_ADAM)
        self.packed = packed
        if packed:
            self.x = pack_padded_sequence(x, lengths, enforce_sorted=False)
            self.target = pack_padded_sequence(target, lengths, enforce_sorted=False).data
        else:
            self.x, self.target = x, target

    def loss(self):
        y, _ = self.gru(self.x)
        return nn.functional.mse_loss(self.head(y.data if self.packed else y), self.target)

    def __call__(self):
        loss = self.loss()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


class LayerStep:
    """The same step with fastgru's own layer in place of the GRU module and no custom operator:
    fastgru.GRU forward on NumPy, the torch head, MSE and backward from its output, then
    layer.backward with that output's gradient, fastgru.Adam for the GRU and torch.optim.Adam
    for the head. Only the glue around the GRU differs from fastgru.torch's step."""

    def __init__(self, I, H, gru_state, head, x, target, lengths, packed):
        self.layer = fastgru.GRU(I, H, dtype="float32")
        self.layer.load_state_dict(gru_state)
        self.layer_opt = fastgru.Adam(self.layer, lr=LR)
        self.head = head
        self.head_opt = torch.optim.Adam(head.parameters(), **TORCH_ADAM)
        self.x = x.numpy()
        self.lengths = lengths.numpy() if packed else None
        self.valid = (torch.arange(x.shape[0])[:, None] < lengths[None, :]) if packed else None
        self.target = target[self.valid] if packed else target

    def __call__(self):
        y_np, _ = self.layer(self.x, lengths=self.lengths)
        y = torch.from_numpy(y_np).requires_grad_()
        loss = nn.functional.mse_loss(self.head(y[self.valid] if self.valid is not None else y), self.target)
        self.head_opt.zero_grad()
        loss.backward()
        self.layer.backward(y.grad.numpy())
        self.layer_opt.step()
        self.head_opt.step()
        self.layer_opt.zero_grad()


class ModelStep:
    """The same step in fastgru's own API only: GRUModel (GRU + Dense head in one flat buffer),
    fastgru.losses "mse", model.backward, fastgru.Adam step, zero_grad."""

    def __init__(self, I, H, state, x, target, lengths, packed):
        self.model = fastgru.GRUModel(I, H, 1, dtype="float32", seed=0)
        self.model.load_state_dict(state)
        self.opt = fastgru.Adam(self.model, lr=LR)
        self.x, self.target = x.numpy(), target.numpy()
        self.lengths = lengths.numpy() if packed else None
        T = x.shape[0]
        self.mask = (np.arange(T)[:, None] < lengths.numpy()[None, :]) if packed else None

    def __call__(self):
        out = self.model(self.x, self.lengths, time_major=True)
        _, dout = fastgru.losses.compute("mse", out, self.target, self.mask)
        self.model.backward(dout, time_major=True)
        self.opt.step()
        self.opt.zero_grad()


def make_steps(B, T, I, H, packed):
    """The four systems' steps, from the same initial weights and data."""
    torch.manual_seed(0)
    reference = nn.GRU(I, H)
    head = nn.Linear(H, 1)
    x, target, lengths = make_batch(B, T, I, packed)

    def head_copy():
        copy = nn.Linear(H, 1)
        copy.load_state_dict(head.state_dict())
        return copy

    state = {f"gru.{k}": v for k, v in reference.state_dict().items()}
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    return (
        TorchStep(reference, head, x, target, lengths, packed),
        TorchStep(fastgru.torch.GRU.from_torch(reference), head_copy(), x, target, lengths, packed),
        LayerStep(I, H, reference.state_dict(), head_copy(), x, target, lengths, packed),
        ModelStep(I, H, state, x, target, lengths, packed),
    )


def check_agreement(name, torch_step, ours_step):
    """Loss and gradients of one step of fastgru.torch against nn.GRU's (nothing updated)."""
    grads = []
    for step in (torch_step, ours_step):
        step.opt.zero_grad()
        loss = step.loss()
        loss.backward()
        grads.append([loss.detach()] + [p.grad.clone() for p in step.opt.param_groups[0]["params"]])
        step.opt.zero_grad()
    for k, (want, got) in enumerate(zip(*grads)):
        error = (got - want).abs().max().item() / max(1.0, want.abs().max().item())
        if error > 1e-4:
            sys.exit(f"{name}: fastgru.torch disagrees with torch.nn.GRU (tensor {k}: relative error {error:.2g})")


def run(name, threads, iters, packed):
    B, T, I, H = CONFIGS[name].shape
    torch.set_num_threads(threads)
    fastgru.set_num_threads(threads)
    steps = make_steps(B, T, I, H, packed)
    check_agreement(name, steps[0], steps[1])
    medians = interleaved_medians(steps, iters)  # (median seconds, median CPU wait) each
    return {system: seconds for system, (seconds, _) in zip(SYSTEMS, medians)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--iters", type=int, help="timed iterations per system (default: per config)")
    parser.add_argument("--no-packed", action="store_true", help="skip the PackedSequence rows")
    parser.add_argument("--own-pool", action="store_true", help="fastgru's own thread pool, not torch's threads")
    parser.add_argument("--fused-adam", action="store_true", help="torch.optim.Adam(fused=True) everywhere")
    parser.add_argument("--markdown", action="store_true", help="print a README-ready markdown table")
    args = parser.parse_args()
    fastgru.torch.share_torch_threads(not args.own_pool)
    if args.fused_adam:
        TORCH_ADAM["fused"] = True

    load_before = os.getloadavg()[0]
    rows = []
    for threads in args.threads:
        for packed in (False,) if args.no_packed else (False, True):
            for name in args.configs:
                iters = args.iters or DEFAULT_ITERS[name]
                t = run(name, threads, iters, packed)
                ratio = {system: t["nn.GRU"] / t[system] for system in SYSTEMS}
                rows.append(
                    [f"{name}{' packed' if packed else ''} {CONFIGS[name].shape}", str(threads)]
                    + [f"{t[system] * 1e3:.2f}" for system in SYSTEMS]
                    + [f"{ratio[system]:.2f}x" for system in SYSTEMS[1:]]
                    + [f"{100 * ratio['fastgru.torch'] / ratio['fastgru layer']:.0f}%"]
                )
                print("  ".join(rows[-1]), file=sys.stderr, flush=True)

    head = (
        ["config (B,T,I,H)", "threads"]
        + [f"{system} ms" for system in SYSTEMS]
        + [f"nn.GRU / {system}" for system in SYSTEMS[1:]]
        + ["glue"]
    )
    print(f"command: python bench/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"fastgru {fastgru.__version__} isa {fastgru.active_isa()}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} logical CPUs, torch.optim.Adam "
        f"{'fused' if args.fused_adam else 'default (per tensor)'}; 1-minute load average "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"median of interleaved iterations ({', '.join(f'{k} {v}' for k, v in DEFAULT_ITERS.items())} unless "
        f"--iters) after warm-up"
    )
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        for row in [head] + rows:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    print(
        f"glue (ratio of fastgru.torch / ratio of fastgru layer): median over rows "
        f"{statistics.median(float(r[-1][:-1]) for r in rows):.0f}%"
    )


if __name__ == "__main__":
    main()
