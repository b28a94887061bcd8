"""fastgru.jax.gru against a GRU written here in plain JAX (lax.scan over the equations of
help(fastgru.GRU)): outputs, gradients, jit, value_and_grad, vmap over the batch, the Flax module."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
fastgru_jax = pytest.importorskip("fastgru.jax")

ATOL = 2e-5


def plain_gru(params, x, h0, lengths, reset_after):
    """The truth: x (B, T, I), h0 (L*D, B, H), lengths (B,) -> y (B, T, D*H), h_n (L*D, B, H)."""
    layers = sum(1 for name in params if name.startswith("weight_hh_l") and not name.endswith("_reverse"))
    D = 2 if "weight_hh_l0_reverse" in params else 1
    T = x.shape[1]
    inputs, h_n = jnp.swapaxes(x, 0, 1), []  # (T, B, I)
    valid = (jnp.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
    for layer in range(layers):
        outputs = []
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + s], params["weight_hh" + s]
            b_ih = params.get("bias_ih" + s, jnp.zeros(w_ih.shape[0]))
            b_hh = params.get("bias_hh" + s, jnp.zeros(w_ih.shape[0]))

            def step(h, inp, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh):
                x_t, ok = inp
                i_r, i_z, i_n = jnp.split(x_t @ w_ih.T + b_ih, 3, axis=1)
                h_r, h_z, h_n_gate = jnp.split(h @ w_hh.T + b_hh, 3, axis=1)
                r, z = jax.nn.sigmoid(i_r + h_r), jax.nn.sigmoid(i_z + h_z)
                if reset_after:
                    n = jnp.tanh(i_n + r * h_n_gate)
                else:
                    n = jnp.tanh(i_n + (r * h) @ w_hh[2 * h.shape[1] :].T + b_hh[2 * h.shape[1] :])
                new = (1 - z) * n + z * h
                return jnp.where(ok, new, h), jnp.where(ok, new, 0.0)

            h_last, ys = jax.lax.scan(step, h0[layer * D + d], (inputs, valid), reverse=bool(d))
            outputs.append(ys)
            h_n.append(h_last)
        inputs = jnp.concatenate(outputs, axis=2)
    return jnp.swapaxes(inputs, 0, 1), jnp.stack(h_n)


def setup(rng, B=3, T=5, I=4, H=6, num_layers=1, bidirectional=False, bias=True):
    params = fastgru_jax.init_params(
        jax.random.key(int(rng.integers(1 << 30))), I, H, num_layers, bidirectional=bidirectional, bias=bias
    )
    LD = num_layers * (2 if bidirectional else 1)
    x = jnp.asarray(rng.standard_normal((B, T, I)), jnp.float32)
    h0 = jnp.asarray(rng.standard_normal((LD, B, H)), jnp.float32)
    return params, x, h0


def close(a, b, what):
    err = float(jnp.max(jnp.abs(jnp.asarray(a) - jnp.asarray(b))))
    assert err <= ATOL, f"{what}: max abs difference {err:.3g}"


def loss_of(gru, weights_y, weights_h):
    def loss(params, x, h0, lengths):
        y, h_n = gru(params, x, h0, lengths)
        return jnp.sum(y * weights_y) + jnp.sum(h_n * weights_h)

    return loss


@pytest.mark.parametrize(
    "reset_after,num_layers,bidirectional,bias",
    [(True, 1, False, True), (False, 2, True, True), (False, 1, False, False)],
)
def test_outputs_and_gradients_match_plain_jax(rng, reset_after, num_layers, bidirectional, bias):
    params, x, h0 = setup(rng, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    lengths = jnp.asarray([5, 2, 4])
    y, h_n = fastgru_jax.gru(params, x, h0, lengths, reset_after=reset_after)
    y_ref, h_ref = plain_gru(params, x, h0, lengths, reset_after)
    close(y, y_ref, "y")
    close(h_n, h_ref, "h_n")

    wy, wh = jnp.asarray(rng.standard_normal(y.shape), jnp.float32), jnp.asarray(rng.standard_normal(h_n.shape))
    ours = loss_of(lambda *a: fastgru_jax.gru(*a, reset_after=reset_after), wy, wh)
    truth = loss_of(lambda *a: plain_gru(*a, reset_after), wy, wh)
    grads = jax.grad(ours, argnums=(0, 1, 2))(params, x, h0, lengths)
    expected = jax.grad(truth, argnums=(0, 1, 2))(params, x, h0, lengths)
    for name in params:
        close(grads[0][name], expected[0][name], f"d{name}")
    close(grads[1], expected[1], "dx")
    close(grads[2], expected[2], "dh0")


def test_jit_and_value_and_grad(rng):
    params, x, h0 = setup(rng)
    lengths = jnp.asarray([5, 5, 3])
    wy = jnp.asarray(rng.standard_normal((3, 5, 6)), jnp.float32)

    def loss(params, x):
        y, _ = fastgru_jax.gru(params, x, lengths=lengths)
        return jnp.sum(y * wy)

    value, grads = jax.jit(jax.value_and_grad(loss))(params, x)
    value_ref, grads_ref = jax.value_and_grad(
        lambda p, x: jnp.sum(plain_gru(p, x, jnp.zeros_like(h0), lengths, True)[0] * wy)
    )(params, x)
    close(value, value_ref, "loss")
    for name in params:
        close(grads[name], grads_ref[name], f"d{name}")
    y, h_n = jax.jit(fastgru_jax.gru)(params, x, h0)
    y_ref, h_ref = plain_gru(params, x, h0, jnp.full(3, 5), True)
    close(y, y_ref, "jitted y")
    close(h_n, h_ref, "jitted h_n")


def test_vmap_over_the_batch(rng):
    """vmap of the unbatched call over the batch equals the batched call, and so do per-sequence
    gradients (vmap of grad) summed over the batch."""
    params, x, h0 = setup(rng)
    y, h_n = fastgru_jax.gru(params, x, h0)
    y_v, h_v = jax.vmap(lambda x, h: fastgru_jax.gru(params, x, h), in_axes=(0, 1), out_axes=(0, 1))(x, h0)
    close(y_v, y, "vmapped y")
    close(h_v, h_n, "vmapped h_n")

    def loss(params, x, h):
        return jnp.sum(fastgru_jax.gru(params, x, h)[0] ** 2)

    per_sequence = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 1)))(params, x, h0)
    total = jax.grad(lambda p: jnp.sum(fastgru_jax.gru(p, x, h0)[0] ** 2))(params)
    for name in params:
        assert per_sequence[name].shape == (3,) + params[name].shape
        close(per_sequence[name].sum(0), total[name], f"d{name}")


def test_time_major_and_unbatched(rng):
    params, x, h0 = setup(rng)
    y, h_n = fastgru_jax.gru(params, x, h0)
    y_t, h_t = fastgru_jax.gru(params, jnp.swapaxes(x, 0, 1), h0, time_major=True)
    close(jnp.swapaxes(y_t, 0, 1), y, "time-major y")
    close(h_t, h_n, "time-major h_n")
    y_1, h_1 = fastgru_jax.gru(params, x[1], h0[:, 1])
    close(y_1, y[1], "unbatched y")
    close(h_1, h_n[:, 1], "unbatched h_n")


def test_state_dict_of_fastgru_gru_is_params(rng):
    import fastgru

    layer = fastgru.GRU(4, 6, 2, bidirectional=True, seed=3)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)  # (T, B, I)
    y, h_n = layer.eval()(x)
    params = {name: jnp.asarray(value) for name, value in layer.state_dict().items()}
    y_j, h_j = fastgru_jax.gru(params, x, time_major=True)
    close(y_j, y, "y")
    close(h_j, h_n, "h_n")


def test_errors(rng):
    params, x, h0 = setup(rng)
    with pytest.raises(ValueError, match="x: expected shape"):
        fastgru_jax.gru(params, x[..., :2])
    with pytest.raises(ValueError, match="h0: expected shape"):
        fastgru_jax.gru(params, x, h0[:, :2])
    with pytest.raises(ValueError, match="missing keys"):
        fastgru_jax.gru({k: v for k, v in params.items() if k != "bias_hh_l0"}, x)
    with pytest.raises(Exception, match="at least one step"):
        jax.block_until_ready(fastgru_jax.gru(params, x, lengths=jnp.asarray([5, 0, 2])))


def test_flax_module(rng):
    nnx = pytest.importorskip("flax.nnx")
    module = fastgru_jax.GRU(4, 6, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.standard_normal((3, 5, 4)), jnp.float32)
    params = {name: getattr(module, name)[...] for name in module.names}
    y, h_n = module(x)
    y_ref, h_ref = plain_gru(params, x, jnp.zeros((1, 3, 6)), jnp.full(3, 5), True)
    close(y, y_ref, "y")
    close(h_n, h_ref, "h_n")
    grads = nnx.grad(lambda m: jnp.sum(m(x)[0] ** 2))(module)
    grads_ref = jax.grad(lambda p: jnp.sum(plain_gru(p, x, jnp.zeros((1, 3, 6)), jnp.full(3, 5), True)[0] ** 2))(params)
    for name in module.names:
        close(getattr(grads, name)[...], grads_ref[name], f"d{name}")


def test_a_second_backward_runs_the_forward_again(rng):
    """The first backward consumes the forward's workspace; a second (the same vjp applied twice)
    finds it gone and recomputes it: same gradients."""
    params, x, h0 = setup(rng)
    y, vjp = jax.vjp(lambda p: fastgru_jax.gru(p, x, h0)[0], params)
    cotangent = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
    first, second = vjp(cotangent)[0], vjp(cotangent)[0]
    expected = jax.vjp(lambda p: plain_gru(p, x, h0, jnp.full(3, 5), True)[0], params)[1](cotangent)[0]
    for name in params:
        close(first[name], expected[name], f"d{name}")
        close(second[name], expected[name], f"d{name} (second backward)")


def test_float64(rng):
    """float64 parameters and inputs (jax_enable_x64) run the core's float64 path: against plain
    JAX at float64's precision."""
    enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64
    with enable_x64(True):
        params, x, h0 = setup(rng, num_layers=2)
        params = {name: value.astype(jnp.float64) for name, value in params.items()}
        x, h0, lengths = x.astype(jnp.float64), h0.astype(jnp.float64), jnp.asarray([5, 1, 3])
        wy = jnp.asarray(rng.standard_normal((3, 5, 6)))

        def loss(gru):
            return lambda p, x, h0: jnp.sum(gru(p, x, h0, lengths)[0] * wy)

        value, grads = jax.jit(jax.value_and_grad(loss(fastgru_jax.gru), argnums=(0, 1, 2)))(params, x, h0)
        value_ref, grads_ref = jax.value_and_grad(
            loss(lambda p, x, h0, lengths: plain_gru(p, x, h0, lengths, True)), argnums=(0, 1, 2)
        )(params, x, h0)
        assert value.dtype == jnp.float64
        np.testing.assert_allclose(value, value_ref, rtol=1e-12)
        for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_ref)):
            assert got.dtype == jnp.float64
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_mask_that_is_not_right_padded_is_refused(rng):
    """fastgru.keras' lengths of -1 (a mask with a False step before a True one) reach the XLA
    call, whose error carries the mask's message."""
    params, x, _ = setup(rng)
    with pytest.raises(Exception, match="right-padded"):
        jax.block_until_ready(fastgru_jax.gru(params, x, lengths=jnp.asarray([5, -1, 2])))


def test_training_steps_leave_no_workspace_behind(rng):
    """Each jitted gradient step's backward takes the workspace its forward kept in the core."""
    from fastgru import _core

    params, x, h0 = setup(rng)
    step = jax.jit(jax.grad(lambda p: jnp.sum(fastgru_jax.gru(p, x, h0)[0] ** 2)))
    jax.block_until_ready(step(params))
    kept, _, again = _core.kept_workspace_counts()
    for _ in range(3):
        jax.block_until_ready(step(params))
    assert _core.kept_workspace_counts()[0] == kept
    assert _core.kept_workspace_counts()[2] == again, "a backward ran its forward again"


def test_the_xla_calls_check_their_buffers(rng):
    """fastgru's FFI handlers refuse buffers that do not match their attributes (an error from
    JAX's runtime, not a crash), and attributes that are missing."""
    params, x, h0 = setup(rng)
    flat = jnp.concatenate([jnp.ravel(value) for value in params.values()])
    spec = {"input_size": 4, "hidden_size": 6, "num_layers": 1, "bidirectional": 0, "bias": 1, "reset_after": 1}
    attrs = {name: np.int64(value) for name, value in spec.items()}
    lengths = jnp.full((3,), 5, jnp.int32)
    out = (jax.ShapeDtypeStruct((5, 3, 6), jnp.float32), jax.ShapeDtypeStruct((1, 3, 6), jnp.float32))
    call = jax.ffi.ffi_call("fastgru_gru_forward", out)
    x_t = jnp.swapaxes(x, 0, 1)
    y, _ = call(flat, x_t, h0, lengths, **attrs, training=np.int64(0))
    close(jnp.swapaxes(y, 0, 1), fastgru_jax.gru(params, x, h0)[0], "y of the raw call")
    with pytest.raises(Exception, match="params: wrong dtype or shape"):
        jax.block_until_ready(call(flat[:-1], x_t, h0, lengths, **attrs, training=np.int64(0)))
    with pytest.raises(Exception, match="h0: wrong dtype or shape"):
        jax.block_until_ready(call(flat, x_t, h0[:, :2], lengths, **attrs, training=np.int64(0)))
    with pytest.raises(Exception, match="attribute training"):
        jax.block_until_ready(call(flat, x_t, h0, lengths, **attrs))


def test_host_callbacks_for_other_platforms(rng, monkeypatch):
    """The jax.pure_callback path that a program on another platform (a GPU) takes, run here on
    the CPU: outputs and gradients against plain JAX, padded and bidirectional."""
    monkeypatch.setattr(fastgru_jax, "_CUSTOM_CALLS", False)
    params, x, h0 = setup(rng, num_layers=2, bidirectional=True)
    lengths = jnp.asarray([5, 2, 4])
    wy = jnp.asarray(rng.standard_normal((3, 5, 12)), jnp.float32)

    def loss(gru):
        return lambda p, x, h0: jnp.sum(gru(p, x, h0, lengths)[0] * wy) + jnp.sum(gru(p, x, h0, lengths)[1])

    value, grads = jax.jit(jax.value_and_grad(loss(fastgru_jax.gru), argnums=(0, 1, 2)))(params, x, h0)
    value_ref, grads_ref = jax.value_and_grad(
        loss(lambda p, x, h0, lengths: plain_gru(p, x, h0, lengths, True)), argnums=(0, 1, 2)
    )(params, x, h0)
    close(value, value_ref, "loss")
    for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_ref)):
        close(got, want, "gradient")
