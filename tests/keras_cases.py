"""fastgru.keras.GRU against keras.layers.GRU on one Keras backend, run in its own process:

    KERAS_BACKEND=jax python tests/keras_cases.py [case ...]

Keras picks its backend once, at import, and TensorFlow and torch do not share a process well,
so tests/test_keras.py runs this script once per backend; it prints one JSON object, case name ->
"ok" or the failure's traceback. The truth is keras.layers.GRU holding the same weights: outputs
from predict, and gradients as the weight changes of one SGD step with learning rate 1 (the only
gradient API every backend shares: model.train_on_batch). A Dense layer before the GRU gives the
gradient with respect to the GRU's input a weight to show up in.
"""

import json
import os
import sys
import tempfile
import traceback

import keras
import numpy as np
from keras import layers

import fastgru.keras

B, T, I, H = 4, 6, 3, 5
ATOL = 2e-5


def data(seed=0, steps=T):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, steps, I)).astype(np.float32), rng.standard_normal((B, steps, 1)).astype(np.float32)


def build(gru_cls, *, head_input=True, sequences=True, wrap=None, mask=None, weights_seed=1, **gru_kwargs):
    """Input (B, T, I) -> [Masking] -> Dense(I) -> GRU (or wrap(GRU)) -> Dense(1), weights from weights_seed."""
    keras.utils.set_random_seed(weights_seed)
    inputs = keras.Input((T, I), batch_size=B)
    x = inputs
    if mask is not None:
        x = layers.Masking(mask_value=mask)(x)
    if head_input:
        x = layers.Dense(I, name="before")(x)
    gru = gru_cls(H, return_sequences=sequences, name="gru", **gru_kwargs)
    x = (wrap(gru) if wrap else gru)(x)
    outputs = layers.Dense(1, name="after")(x)
    return keras.Model(inputs, outputs)


def pair(**kwargs):
    """A Keras model and the same model with fastgru.keras.GRU, holding the same weights."""
    reference = build(layers.GRU, **kwargs)
    model = build(fastgru.keras.GRU, weights_seed=2, **kwargs)
    model.set_weights(reference.get_weights())
    return reference, model


def sgd_deltas(model, x, y):
    """The weight changes of one SGD step (learning rate 1): minus the gradients."""
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    return [after - w for after, w in zip(model.get_weights(), before)]


def close(a, b, what, atol=ATOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert err <= atol, f"{what}: max abs difference {err:.3g} > {atol}"


def check_parity(x=None, y=None, **kwargs):
    """Outputs and gradients of the pair built with kwargs agree."""
    if x is None:
        x, y = data()
    reference, model = pair(**kwargs)
    close(model.predict(x, verbose=0), reference.predict(x, verbose=0), "outputs")
    for i, (a, b) in enumerate(zip(sgd_deltas(model, x, y), sgd_deltas(reference, x, y))):
        close(a, b, f"gradient {i}")


def padded(x, lengths):
    """x with each sequence's steps from its length on set to zero (Masking's mask value)."""
    x = x.copy()
    for b, length in enumerate(lengths):
        x[b, length:] = 0.0
    return x


# -- the cases ---------------------------------------------------------------------------------
def case_parity_reset_after():
    check_parity(reset_after=True)


def case_parity_reset_before():
    check_parity(reset_after=False)


def case_parity_last_output_no_bias():
    check_parity(sequences=False, use_bias=False)


def case_weights_both_ways():
    x, _ = data()
    _, model = pair()
    assert [w.shape for w in model.layers[-2].get_weights()] == [(I, 3 * H), (H, 3 * H), (2, 3 * H)]
    names = [v.path.split("/")[-1] for v in model.get_layer("gru").weights]
    assert names == ["kernel", "recurrent_kernel", "bias"], names
    fresh = build(layers.GRU, weights_seed=3)
    fresh.set_weights(model.get_weights())  # fastgru's weights into Keras's layer
    close(fresh.predict(x, verbose=0), model.predict(x, verbose=0), "outputs")


def case_masking():
    x, y = data()
    check_parity(padded(x, [6, 3, 1, 5]), y, mask=0.0)


def case_masking_reset_before_last_output():
    x, y = data()
    check_parity(padded(x, [2, 6, 4, 1]), y, mask=0.0, sequences=False, reset_after=False)


def case_masking_go_backwards():
    x, y = data()
    check_parity(padded(x, [6, 3, 1, 5]), y, mask=0.0, go_backwards=True)


def case_masking_bidirectional():
    x, y = data()
    check_parity(padded(x, [6, 3, 1, 5]), y, mask=0.0, wrap=layers.Bidirectional)


def case_embedding_mask_zero():
    rng = np.random.default_rng(4)
    tokens = rng.integers(1, 10, (B, T))
    for b, length in enumerate([6, 2, 4, 3]):
        tokens[b, length:] = 0
    y = rng.standard_normal((B, T, 1)).astype(np.float32)

    def build_embedded(gru_cls, seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((T,), batch_size=B, dtype="int32")
        x = layers.Embedding(10, I, mask_zero=True)(inputs)
        x = gru_cls(H, return_sequences=True, name="gru")(x)
        return keras.Model(inputs, layers.Dense(1)(x))

    reference, model = build_embedded(layers.GRU, 1), build_embedded(fastgru.keras.GRU, 2)
    model.set_weights(reference.get_weights())
    close(model.predict(tokens, verbose=0), reference.predict(tokens, verbose=0), "outputs")
    for i, (a, b) in enumerate(zip(sgd_deltas(model, tokens, y), sgd_deltas(reference, tokens, y))):
        close(a, b, f"gradient {i}")


def case_mask_not_right_padded_refused():
    x, _ = data()
    x[1, 2] = 0.0  # a masked step inside the sequence
    model = build(fastgru.keras.GRU, mask=0.0, head_input=False)
    try:
        model.predict(x, verbose=0)
    except Exception as exc:  # a ValueError, wrapped by JAX's and TensorFlow's runtimes
        assert "right-padded" in str(exc), str(exc)
    else:
        raise AssertionError("a mask with a hole was accepted")


def case_bidirectional():
    check_parity(wrap=lambda gru: layers.Bidirectional(gru, merge_mode="concat"))


def case_go_backwards():
    check_parity(go_backwards=True)


def case_return_state():
    x, _ = data()
    keras.utils.set_random_seed(1)
    h0 = np.random.default_rng(5).standard_normal((B, H)).astype(np.float32)
    reference = layers.GRU(H, return_sequences=True, return_state=True)
    gru = fastgru.keras.GRU(H, return_sequences=True, return_state=True)
    reference(x), gru(x)
    gru.set_weights(reference.get_weights())
    for a, b in zip(gru(x, initial_state=h0), reference(x, initial_state=h0)):
        close(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), "return_state")


def case_stateful():
    x, _ = data()
    outputs, weights = [], None
    for cls in (layers.GRU, fastgru.keras.GRU):
        keras.utils.set_random_seed(1)
        gru = cls(H, stateful=True, return_sequences=True)
        model = keras.Sequential([keras.Input((T, I), batch_size=B), gru])
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        first, second = (keras.ops.convert_to_numpy(model(x)) for _ in range(2))
        gru.reset_state()
        outputs.append((first, second, keras.ops.convert_to_numpy(model(x))))
    for a, b in zip(*outputs):
        close(a, b, "stateful outputs")
    assert np.max(np.abs(outputs[1][0] - outputs[1][1])) > 1e-3  # the state carried over
    close(outputs[1][0], outputs[1][2], "after reset_state")


def case_config_and_save():
    x, _ = data()
    model = build(fastgru.keras.GRU, reset_after=False, go_backwards=True, dropout=0.25)
    gru = model.get_layer("gru")
    clone = fastgru.keras.GRU.from_config(gru.get_config())
    assert isinstance(clone, fastgru.keras.GRU) and clone.get_config() == gru.get_config()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    assert type(loaded.get_layer("gru")) is fastgru.keras.GRU
    close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), "loaded outputs", atol=0)


def case_keras_weights_file():
    x, _ = data()
    reference = build(layers.GRU)
    model = build(fastgru.keras.GRU, weights_seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.weights.h5")
        reference.save_weights(path)
        model.load_weights(path)
    close(model.predict(x, verbose=0), reference.predict(x, verbose=0), "outputs")


def case_adam_loss_curve():
    x, y = data(6)
    losses = []
    for model in pair():
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        losses.append([float(model.train_on_batch(x, y)) for _ in range(20)])
    close(losses[0], losses[1], "losses", atol=1e-4)
    assert losses[0][-1] < losses[0][0]


def case_fit_evaluate_predict():
    x, y = data(7)
    model = build(fastgru.keras.GRU)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(np.concatenate([x] * 4), np.concatenate([y] * 4), batch_size=B, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0))
    assert model.predict(x, verbose=0).shape == (B, T, 1)


def case_dropout():
    """Input dropout draws the mask keras.layers.GRU draws (the cell's, from the same seed)."""
    x, _ = data()
    reference, model = pair(dropout=0.5, seed=8)
    training = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.max(np.abs(training - model.predict(x, verbose=0))) > 1e-3  # dropout acts in training only
    close(training, keras.ops.convert_to_numpy(reference(x, training=True)), "training outputs")


def case_unsupported_arguments():
    for kwargs, name in (
        ({"activation": "relu"}, "activation"),
        ({"recurrent_activation": "tanh"}, "recurrent_activation"),
        ({"recurrent_dropout": 0.1}, "recurrent_dropout"),
    ):
        try:
            fastgru.keras.GRU(H, **kwargs)
        except ValueError as exc:
            assert str(exc).startswith(name + ":"), str(exc)
        else:
            raise AssertionError(f"{kwargs} was accepted")
    fastgru.keras.GRU(H, unroll=True, use_cudnn=False)  # accepted and ignored


def case_tensorflow_xla_refused():
    """Keras compiles a model of the layer without XLA (jit_compile=True warns and falls back);
    the layer called inside a tf.function(jit_compile=True) raises a clear error."""
    if keras.backend.backend() != "tensorflow":
        return
    import warnings

    import tensorflow as tf

    x, y = data()
    model = build(fastgru.keras.GRU)
    model.compile(optimizer="sgd", loss="mse")
    assert model.jit_compile is False
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert model.jit_compile is False
    model.train_on_batch(x, y)
    try:
        tf.function(lambda x: model(x), jit_compile=True)(x)
    except RuntimeError as exc:
        assert "jit_compile=False" in str(exc), str(exc)
    else:
        raise AssertionError("XLA compilation was accepted")


CASES = {name[len("case_") :]: f for name, f in sorted(globals().items()) if name.startswith("case_")}


def main(names):
    results = {}
    for name in names or CASES:
        try:
            CASES[name]()
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc()
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
