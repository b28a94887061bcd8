"""PyTorch's own test cases for torch.nn.GRU, run on torch.nn.GRU and on fastgru.torch.GRU in its place.

    pip install ".[test]" torch expecttest && python tests/torch_suites.py [-v]

Not collected by pytest (no test_ prefix): it prints passed/failed counts per check for plain
torch and for fastgru, and exits non-zero when fastgru fails a check that plain torch passes.

torch's wheel ships the test cases (torch.testing._internal.common_modules.module_db: the GRU
ModuleInfo with its module_inputs_func samples and module_error_inputs_func error cases) but not the
test files that run them (test/test_modules.py, test/test_nn.py). So this script runs each sample
through the checks of test_modules.py's generic module tests, written here: forward against the
sample's reference_fn (float32 and float64), gradcheck and gradgradcheck of inputs and parameters
(float64, with torch's test defaults: fast mode, batched gradients), non-contiguous inputs, the
error cases, construction on the meta device with dtype and to_empty, and a state_dict round trip. fastgru is substituted for torch.nn.GRU before
common_modules is imported, so module_db's GRU entry holds fastgru's class (checked); fastgru's
run also compares every sample with torch.nn.GRU holding the same parameters ("parity").
"""

import argparse
import collections
import copy
import io
import re
import sys

import torch
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence
from torch.utils import _pytree as pytree

import fastgru.torch

NN_GRU = torch.nn.GRU
torch.nn.GRU = fastgru.torch.GRU  # before common_modules reads torch.nn.GRU into module_db
try:
    from torch.testing._internal.common_modules import ModuleErrorEnum, module_db
    from torch.testing._internal.common_utils import gradcheck, gradgradcheck  # torch's test defaults
finally:
    torch.nn.GRU = NN_GRU


def gru_module_info():
    """module_db's GRU entry, which must hold fastgru's class (the substitution took)."""
    entries = [info for info in module_db if info.module_cls is fastgru.torch.GRU]
    if len(entries) != 1 or any(info.module_cls is NN_GRU for info in module_db):
        raise SystemExit("the substitution did not take: module_db's GRU entry is not fastgru.torch.GRU")
    return entries[0]


def construct(info, sample, dtype):
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    return info.module_cls(*args, **kwargs).to(dtype)


def tensors_of(value):
    return [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor) and t.is_floating_point()]


def replace_tensors(value, new):
    """value (a tuple of tensors and PackedSequences) with its floating-point tensors replaced by new, in order."""
    new = iter(new)
    return pytree.tree_map(lambda t: next(new) if isinstance(t, torch.Tensor) and t.is_floating_point() else t, value)


def outputs_of(result):
    return [t.data if isinstance(t, PackedSequence) else t for t in result]


def assert_all_close(actual, expected, what, dtype):
    tol = {torch.float32: 1e-5, torch.float64: 1e-10}[dtype]
    for a, b in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"{what}: {m}")


def differentiable_function(module, args):
    """(f, inputs): f(*inputs) = the module's outputs, with inputs = the floating-point input
    tensors then the parameters, every one a leaf requiring grad (test_modules' _test_gradients_helper)."""
    inputs = [t.detach().clone().requires_grad_() for t in tensors_of(args)]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    names = [name for name, _ in module.named_parameters()]

    def f(*flat):
        call_args = replace_tensors(args, flat[: len(inputs)])
        return tuple(outputs_of(functional_call(module, dict(zip(names, flat[len(inputs) :])), call_args)))

    return f, (*inputs, *params)


def run_sample_checks(info, sample, training, results, nn_parity):
    """The per-sample checks; results[check] counts (passed, failed) and records failures."""

    def check(name, fn):
        try:
            fn()
            results[name][0] += 1
        except Exception as exc:  # a failing check is counted, not fatal
            results[name][1] += 1
            results[name][2].append(
                f"{sample.constructor_input.kwargs} training={training}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            )

    for dtype in (torch.float32, torch.float64):
        args = replace_tensors(
            sample.forward_input.args, [t.detach().to(dtype) for t in tensors_of(sample.forward_input.args)]
        )
        torch.manual_seed(0)
        module = construct(info, sample, dtype).train(training)

        def forward():
            result = outputs_of(module(*args))
            # reference_fn is the no-batch-dim reference (unsqueeze, run, squeeze): unbatched samples only.
            if sample.reference_fn is not None and not isinstance(args[0], PackedSequence):
                expected = outputs_of(sample.reference_fn(module, *args))  # it passes the parameters itself
                assert_all_close(result, expected, "reference_fn", dtype)

        check("forward", forward)
        if nn_parity:

            def parity():
                ref = NN_GRU(*sample.constructor_input.args, **sample.constructor_input.kwargs).to(dtype)
                ref.load_state_dict(module.state_dict())
                ref.train(training)
                f_ours, inputs = differentiable_function(module, args)
                f_ref, _ = differentiable_function(ref, args)
                ours, expected = f_ours(*inputs), f_ref(*inputs)
                assert_all_close(ours, expected, "outputs vs torch.nn.GRU", dtype)
                weights = [torch.randn_like(t) for t in expected]
                grads = [
                    torch.autograd.grad(sum((o * w).sum() for o, w in zip(out, weights)), inputs)
                    for out in (ours, expected)
                ]
                assert_all_close(*grads, "gradients vs torch.nn.GRU", dtype)

            check("parity with torch.nn.GRU", parity)
        if dtype == torch.float64:
            f, inputs = differentiable_function(module, args)
            check("gradcheck", lambda: gradcheck(f, inputs, fast_mode=info.gradcheck_fast_mode))
            if info.supports_gradgrad:
                check("gradgradcheck", lambda: gradgradcheck(f, inputs, fast_mode=info.gradcheck_fast_mode))

            def non_contiguous():
                expected = f(*inputs)
                # Every input as a strided view (every other element of a doubled tensor).
                strided = [torch.stack([t, torch.zeros_like(t)], -1)[..., 0].detach().requires_grad_() for t in inputs]
                assert all(not t.is_contiguous() for t in strided if t.numel() > 1)
                actual = f(*strided)
                assert_all_close(actual, expected, "non-contiguous outputs", dtype)
                grads = [
                    torch.autograd.grad(sum(o.sum() for o in out), ins)
                    for out, ins in ((actual, strided), (f(*inputs), inputs))
                ]
                assert_all_close(*grads, "non-contiguous gradients", dtype)

            check("non-contiguous inputs", non_contiguous)

            def meta_and_to_empty():
                kwargs = dict(sample.constructor_input.kwargs, device="meta", dtype=dtype)
                meta = info.module_cls(*sample.constructor_input.args, **kwargs)
                assert all(p.device.type == "meta" and p.dtype == dtype for p in meta.parameters())
                real = meta.to_empty(device="cpu")
                real.load_state_dict(module.state_dict())
                assert_all_close(outputs_of(real.train(training)(*args)), outputs_of(module(*args)), "to_empty", dtype)

            check("meta device, to_empty", meta_and_to_empty)

            def save_load():
                buffer = io.BytesIO()
                torch.save(module.state_dict(), buffer)
                buffer.seek(0)
                loaded = construct(info, sample, dtype).train(training)
                loaded.load_state_dict(torch.load(buffer))
                assert_all_close(outputs_of(loaded(*args)), outputs_of(module(*args)), "after save/load", dtype)
                clone = copy.deepcopy(module)
                assert_all_close(outputs_of(clone(*args)), outputs_of(module(*args)), "deepcopy", dtype)

            check("save/load, deepcopy", save_load)


def run_error_checks(info, results):
    for training in (True, False):
        for error in info.module_error_inputs_func(
            info, device="cpu", dtype=torch.float32, requires_grad=False, training=training
        ):
            name = "errors"
            sample = error.module_error_input
            try:
                if error.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:

                    def action():
                        return info.module_cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
                else:
                    module = info.module_cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)

                    def action():
                        return module.train(training)(*sample.forward_input.args, **sample.forward_input.kwargs)

                try:
                    action()
                except error.error_type as exc:
                    if not re.search(error.error_regex, str(exc)):
                        raise AssertionError(f"message {str(exc)!r} does not match {error.error_regex!r}") from None
                else:
                    raise AssertionError(f"no {error.error_type.__name__} raised")
                results[name][0] += 1
            except Exception as exc:  # a failing check is counted, not fatal
                results[name][1] += 1
                results[name][2].append(f"{error.error_regex!r}: {type(exc).__name__}: {exc}")


def run(info, nn_parity):
    results = collections.defaultdict(lambda: [0, 0, []])
    for training in (True, False):
        for sample in info.module_inputs_func(
            info, device="cpu", dtype=torch.float64, requires_grad=True, training=training, with_packed_sequence=True
        ):
            run_sample_checks(info, sample, training, results, nn_parity)
    run_error_checks(info, results)
    return results


def report(label, results, verbose):
    passed, failed = sum(r[0] for r in results.values()), sum(r[1] for r in results.values())
    print(f"{label}: {passed} passed, {failed} failed")
    for name, (ok, bad, failures) in results.items():
        print(f"  {name:28s} {ok:4d} passed {bad:4d} failed")
        for failure in failures[: None if verbose else 3]:
            print(f"      {failure}")
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure, not the first 3 per check")
    verbose = parser.parse_args().verbose
    torch.set_num_threads(1)
    ours = gru_module_info()
    plain = copy.copy(ours)
    plain.module_cls = NN_GRU
    samples = ours.module_inputs_func(
        ours, device="cpu", dtype=torch.float64, requires_grad=True, training=True, with_packed_sequence=True
    )
    print(f"torch {torch.__version__}: module_db's GRU entry, {len(samples)} samples, each in training and eval mode")
    plain_results = run(plain, nn_parity=False)
    fastgru_results = run(ours, nn_parity=True)
    report("plain torch (torch.nn.GRU)", plain_results, verbose)
    report("fastgru (fastgru.torch.GRU in torch.nn.GRU's place)", fastgru_results, verbose)
    regressions = [name for name, (_, bad, _) in fastgru_results.items() if bad and not plain_results[name][1]]
    if regressions:
        print(f"fastgru fails checks plain torch passes: {regressions}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
