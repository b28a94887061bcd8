"""GRURegressor / GRUClassifier: they learn, follow scikit-learn's conventions (and work inside
sklearn's clone, Pipeline and GridSearchCV when it is installed), and train reproducibly and
safely (early stopping, validation, NaN errors, Ctrl-C, progress output, bad inputs)."""

import sys

import numpy as np
import pytest

import fastgru
from fastgru import losses

SMALL = dict(hidden_size=8, epochs=2, batch_size=16, random_state=0)


def regression_data(rng, N=96, T=8, F=2):
    X = rng.standard_normal((N, T, F)).astype(np.float32)
    return X, X[:, :, 0].mean(1) + 0.5 * X[:, -1, 1]


def classification_data(rng, N=96, T=8, F=2):
    X = rng.standard_normal((N, T, F)).astype(np.float32)
    return X, np.where(X[:, :, 0].sum(1) > 0, "pos", "neg")


def test_regressor_learns(rng):
    X, y = regression_data(rng, N=256)
    est = fastgru.GRURegressor(hidden_size=16, epochs=25, batch_size=32, lr=0.01, random_state=0)
    assert est.fit(X, y) is est
    assert est.score(X, y) > 0.8
    assert est.predict(X).shape == (256,) and est.predict(X).dtype == np.float32
    assert len(est.history_["loss"]) == 25 and est.history_["loss"][-1] < est.history_["loss"][0]
    assert est.history_["val_loss"] == [] and all(t > 0 for t in est.history_["time"])  # no validation data


def test_classifier_learns_with_string_labels(rng):
    X, y = classification_data(rng, N=256)
    est = fastgru.GRUClassifier(hidden_size=16, epochs=20, batch_size=32, lr=0.01, random_state=0).fit(X, y)
    assert est.classes_.tolist() == ["neg", "pos"] and est.score(X, y) > 0.9
    proba = est.predict_proba(X)
    assert proba.shape == (256, 2) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(est.predict(X), est.classes_[proba.argmax(1)])


def test_binary_crossentropy_classifier(rng):
    X, y = classification_data(rng)
    est = fastgru.GRUClassifier(loss="binary_crossentropy", **SMALL).fit(X, y == "pos")
    assert est.model_.head.out_features == 1
    proba = est.predict_proba(X)
    assert proba.shape == (96, 2) and np.allclose(proba.sum(1), 1) and est.predict(X).dtype == bool
    with pytest.raises(ValueError, match="exactly 2 classes"):
        fastgru.GRUClassifier(loss="binary_crossentropy", **SMALL).fit(X, np.arange(96) % 3)


def test_output_shapes(rng):
    X, y = regression_data(rng, N=20)
    est = fastgru.GRURegressor(**SMALL).fit(X, np.stack([y, -y], 1))
    assert est.predict(X).shape == (20, 2) and est.n_outputs_ == 2
    per_step = X[..., 0].cumsum(1)
    est = fastgru.GRURegressor(return_sequences=True, **SMALL).fit(X, per_step)
    assert est.predict(X).shape == (20, 8) and est.model_.return_sequences
    est = fastgru.GRUClassifier(return_sequences=True, **SMALL).fit(X, per_step > 0)
    assert est.predict(X).shape == (20, 8) and est.predict_proba(X).shape == (20, 8, 2)
    assert 0 <= est.score(X, per_step > 0) <= 1


def test_ragged_sequences(rng):
    lengths = rng.integers(1, 9, 40)
    X = [rng.standard_normal((n, 3)) for n in lengths]
    y = [np.cumsum(x[:, 0]) for x in X]
    est = fastgru.GRURegressor(return_sequences=True, bidirectional=True, **SMALL).fit(X, y)
    pred = est.predict(X)
    assert isinstance(pred, list) and [len(p) for p in pred] == list(lengths)
    # A sequence's predictions do not depend on the padding its batch-mates bring.
    alone = est.predict([X[0]])[0]
    np.testing.assert_allclose(alone, pred[0], rtol=1e-5, atol=1e-6)
    assert np.isfinite(est.score(X, y))
    labels = [np.where(x[:, 0] > 0, "up", "down") for x in X]
    clf = fastgru.GRUClassifier(return_sequences=True, **SMALL).fit(X, labels)
    assert clf.classes_.tolist() == ["down", "up"]
    assert [p.shape for p in clf.predict_proba(X)] == [(n, 2) for n in lengths]
    last = fastgru.GRUClassifier(**SMALL).fit(X, [x[-1, 0] > 0 for x in X])
    assert last.predict(X).shape == (40,)


def test_same_random_state_is_bit_identical(rng):
    X, y = regression_data(rng)
    opts = dict(SMALL, dropout=0.2, num_layers=2, validation_split=0.25, shuffle=True)
    a = fastgru.GRURegressor(**opts).fit(X, y)
    b = fastgru.GRURegressor(**opts).fit(X, y)
    assert a.history_["loss"] == b.history_["loss"] and a.history_["val_loss"] == b.history_["val_loss"]
    assert np.array_equal(a.model_.params, b.model_.params) and np.array_equal(a.predict(X), b.predict(X))
    c = fastgru.GRURegressor(**dict(opts, random_state=1)).fit(X, y)
    assert not np.array_equal(a.model_.params, c.model_.params)


def test_validation_split_is_the_last_fraction(rng):
    X, y = regression_data(rng, N=40)
    a = fastgru.GRURegressor(validation_split=0.25, **SMALL).fit(X, y)
    b = fastgru.GRURegressor(validation_data=(X[30:], y[30:]), **SMALL).fit(X[:30], y[:30])
    assert a.history_ == {**b.history_, "time": a.history_["time"]}
    assert all(v is not None for v in a.history_["val_loss"])


def test_early_stopping_and_best_weights(rng):
    X, y = regression_data(rng, N=64)
    Xv, yv = regression_data(rng, N=32)
    frozen = fastgru.GRURegressor(lr=0.0, patience=2, validation_data=(Xv, yv), **dict(SMALL, epochs=10)).fit(X, y)
    assert len(frozen.history_["loss"]) == 3 and frozen.best_epoch_ == 1  # no improvement after epoch 1
    wild = fastgru.GRURegressor(lr=0.3, patience=20, validation_data=(Xv, yv), **dict(SMALL, epochs=8)).fit(X, y)
    val = wild.history_["val_loss"]
    assert wild.best_epoch_ == int(np.argmin(val)) + 1
    mse = float(np.mean((wild.predict(Xv).astype(np.float64) - yv) ** 2))
    assert mse == pytest.approx(min(val), rel=1e-4)


def test_clip_grad_norm_is_applied(rng):
    """fit with clipping takes the steps of the layer-level composition: forward, loss, backward,
    torch-style clip_grad_norm, Adam (float64, one epoch in order)."""
    X, y = regression_data(rng, N=32)
    y = (y * 100).astype(np.float64)
    options = dict(SMALL, shuffle=False, epochs=1, dtype="float64", random_state=5)
    est = fastgru.GRURegressor(clip_grad_norm=1e-3, **options).fit(X, y)
    seed = int(np.random.SeedSequence(5).generate_state(2)[0])
    model = fastgru.GRUModel(X.shape[2], SMALL["hidden_size"], 1, return_sequences=False, dtype="float64", seed=seed)
    opt = fastgru.Adam(model)
    norms = []
    for start in range(0, 32, SMALL["batch_size"]):
        part = slice(start, start + SMALL["batch_size"])
        _, dout = losses.compute("mse", model(X[part]), y[part, None])
        model.backward(dout)
        norms.append(model.clip_grad_norm(1e-3))
        opt.step()
        model.zero_grad()
    assert all(norm > 1e-3 for norm in norms)  # clipping did act on every step
    np.testing.assert_allclose(est.model_.params, model.params, rtol=1e-10, atol=1e-12)
    unclipped = fastgru.GRURegressor(**options).fit(X, y)
    assert not np.allclose(unclipped.model_.params, model.params, rtol=1e-6)


def test_non_finite_loss_names_epoch_and_batch_and_keeps_good_weights(rng):
    X, y = regression_data(rng, N=48)
    y_bad = y.copy()
    y_bad[20] = 1e30  # in the second batch; its square overflows float32
    est = fastgru.GRURegressor(**dict(SMALL, shuffle=False))
    with pytest.raises(fastgru.NonFiniteLossError, match="epoch 1, batch 2") as info:
        est.fit(X, y_bad)
    assert isinstance(info.value, ArithmeticError) and (info.value.epoch, info.value.batch) == (1, 2)
    one_step = fastgru.GRURegressor(**dict(SMALL, shuffle=False, epochs=1)).fit(X[:16], y[:16])
    assert np.array_equal(est.model_.params, one_step.model_.params)


def interrupting(function, call):
    """function, except that its call-th call raises KeyboardInterrupt (a Ctrl-C just then)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return wrapped


def test_keyboard_interrupt_keeps_the_last_finished_step(rng, monkeypatch):
    X, y = regression_data(rng, N=64)
    monkeypatch.setattr(fastgru.GRUModel, "train_step", interrupting(fastgru.GRUModel.train_step, 3))
    est = fastgru.GRURegressor(**dict(SMALL, shuffle=False, epochs=5))
    with pytest.raises(KeyboardInterrupt):  # as Keras' fit: a loop of fits stops at the first Ctrl-C
        est.fit(X, y)
    monkeypatch.undo()
    assert est.interrupted_ and est.history_["loss"] == []
    two_steps = fastgru.GRURegressor(**dict(SMALL, shuffle=False, epochs=1)).fit(X[:32], y[:32])
    assert np.array_equal(est.model_.params, two_steps.model_.params)
    assert est.predict(X).shape == (64,)


def test_keyboard_interrupt_in_validation_keeps_whole_epochs_in_the_history(rng, monkeypatch, capsys):
    X, y = regression_data(rng, N=64)
    monkeypatch.setattr(fastgru.training, "evaluate_loss", interrupting(fastgru.training.evaluate_loss, 2))
    est = fastgru.GRURegressor(**dict(SMALL, epochs=5, verbose=1), validation_split=0.25)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert est.interrupted_
    assert {k: len(v) for k, v in est.history_.items()} == {"loss": 1, "val_loss": 1, "time": 1}
    assert "fit interrupted during epoch 2;" in capsys.readouterr().err


def test_progress_output(rng, capsys, monkeypatch):
    """Output that is not a terminal (a log; pytest's capture) gets one plain line per epoch and no
    carriage returns; a terminal gets tqdm bars; verbose=0 prints nothing."""
    X, y = regression_data(rng, N=32)
    fastgru.GRURegressor(verbose=1, validation_split=0.25, **SMALL).fit(X, y)
    out, err = capsys.readouterr()
    assert err == "" and "\r" not in out
    assert out.splitlines()[0].startswith("epoch 1/2 - loss ") and "val_loss" in out and out.count("\n") == 2
    pytest.importorskip("tqdm")
    monkeypatch.setattr(fastgru.progress, "_interactive", lambda stream: True)
    fastgru.GRURegressor(verbose=True, validation_split=0.25, **SMALL).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "val_loss=" in err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    fastgru.GRURegressor(verbose=1, **SMALL).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and out.startswith("epoch 1/2 - loss ")
    fastgru.GRURegressor(**SMALL).fit(X, y)
    assert capsys.readouterr() == ("", "")


def test_constructor_and_verbose_errors_name_the_estimator():
    with pytest.raises(
        TypeError,
        match=r"GRURegressor\(\) got an unexpected keyword argument 'hiden_size'; "
        r"did you mean 'hidden_size'\?",
    ):
        fastgru.GRURegressor(hiden_size=8)
    with pytest.raises(TypeError, match=r"GRUClassifier\(\).*'colour'; valid parameters"):
        fastgru.GRUClassifier(colour=1)
    X, y = regression_data(np.random.default_rng(0), N=8)
    for bad in (-1, 0.5, "yes"):
        with pytest.raises(ValueError, match="verbose: expected an int >= 0"):
            fastgru.GRURegressor(verbose=bad, **SMALL).fit(X, y)


def test_get_params_set_params_and_repr():
    est = fastgru.GRUClassifier(hidden_size=12, lr=0.01)
    params = est.get_params()
    assert params["hidden_size"] == 12 and params["loss"] is None and "validation_data" in params
    assert est.set_params(hidden_size=3, epochs=1) is est and est.hidden_size == 3
    with pytest.raises(ValueError, match="Invalid parameter 'hiden_size'"):
        est.set_params(hiden_size=3)
    assert repr(est) == "GRUClassifier(epochs=1, hidden_size=3, lr=0.01)"


def test_bad_inputs_raise_clear_errors(rng):
    X, y = regression_data(rng, N=20)
    reg = fastgru.GRURegressor(**SMALL)
    with pytest.raises(ValueError, match=r"X: expected shape \(N, T, F\)"):
        reg.fit(X[:, :, 0], y)
    with pytest.raises(ValueError, match=r"y: expected shape \(N,\) or \(N, O\) with N = 20"):
        reg.fit(X, y[:-1])
    with pytest.raises(ValueError, match="loss: expected one of"):
        fastgru.GRURegressor(loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="GRURegressor supports"):
        fastgru.GRURegressor(loss="cross_entropy").fit(X, y)
    with pytest.raises(ValueError, match="at least one sequence"):
        reg.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="empty list"):
        reg.fit([], [])
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match=r"contains NaN or infinity .or values beyond float32's range"):
        reg.fit(np.full(X.shape, 1e39), y)  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="y: contains NaN, which is no class label"):
        fastgru.GRUClassifier().fit(X, np.where(np.arange(len(X)) == 3, np.nan, np.arange(len(X)) % 2))
    with pytest.raises(ValueError, match="hidden_size"):
        fastgru.GRURegressor(hidden_size=0).fit(X, y)
    with pytest.raises(ValueError, match="not both"):
        fastgru.GRURegressor(validation_split=0.2, validation_data=(X, y)).fit(X, y)
    with pytest.raises(ValueError, match="validation_split"):
        fastgru.GRURegressor(validation_split=0.01).fit(X, y)
    with pytest.raises(fastgru.estimators.NotFittedError, match="not fitted"):
        fastgru.GRURegressor().predict(X)
    reg.fit(X, y)
    with pytest.raises(ValueError, match="F = 2 features"):
        reg.predict(X[:, :, :1])
    with pytest.raises(ValueError, match=r"X\[1\]"):
        reg.predict([X[0], X[1][:, :1]])
    labels = np.arange(20) % 2
    clf = fastgru.GRUClassifier(validation_data=(X, labels + 1), **SMALL)
    with pytest.raises(ValueError, match=r"labels out of range: \[2\]"):
        clf.fit(X, labels)
    with pytest.raises(ValueError, match="at least 2 classes"):
        fastgru.GRUClassifier(**SMALL).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match=r"expected class labels of shape \(N,\)"):
        fastgru.GRUClassifier(**SMALL).fit(X, np.zeros((20, 8)))


# ---- scikit-learn interoperability --------------------------------------------------------------


def test_sklearn_clone_and_tags():
    base = pytest.importorskip("sklearn.base")
    est = fastgru.GRUClassifier(hidden_size=5, patience=3)
    copy = base.clone(est)
    assert copy is not est and copy.get_params() == est.get_params() and not hasattr(copy, "model_")
    assert base.is_classifier(est) and base.is_regressor(fastgru.GRURegressor())


def test_sklearn_sees_the_constructor_tags_and_unfitted_errors(rng):
    import inspect

    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils import get_tags
    from sklearn.utils.validation import check_is_fitted

    for cls in (fastgru.GRURegressor, fastgru.GRUClassifier):
        parameters = inspect.signature(cls).parameters
        assert list(parameters)[:2] == ["hidden_size", "num_layers"] and "random_state" in parameters
        assert sorted(parameters) == sorted(cls().get_params())
        with pytest.raises(NotFittedError):  # scikit-learn's class catches ours
            cls().predict(np.zeros((2, 3, 1)))
        with pytest.raises(fastgru.estimators.NotFittedError):
            cls().predict(np.zeros((2, 3, 1)))
        with pytest.raises(NotFittedError):
            check_is_fitted(cls())
    assert get_tags(fastgru.GRURegressor()).target_tags.multi_output
    assert not get_tags(fastgru.GRUClassifier()).target_tags.multi_output


def test_random_state_takes_numpy_generators_as_scikit_learn_does(rng):
    X, y = regression_data(rng, N=32)
    seeded = [
        fastgru.GRURegressor(**dict(SMALL, random_state=state)).fit(X, y).model_.params
        for state in (np.random.RandomState(7), np.random.RandomState(7), np.random.default_rng(7))
    ]
    assert np.array_equal(seeded[0], seeded[1])  # the same generator state, the same model
    state = np.random.RandomState(7)
    first = fastgru.GRURegressor(**dict(SMALL, random_state=state)).fit(X, y).model_.params
    second = fastgru.GRURegressor(**dict(SMALL, random_state=state)).fit(X, y).model_.params
    assert not np.array_equal(first, second)  # drawn from, so the second fit differs
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="random_state"):
            fastgru.GRURegressor(**dict(SMALL, random_state=bad)).fit(X, y)


def test_classifier_refuses_continuous_targets(rng):
    X, y = regression_data(rng, N=32)
    with pytest.raises(ValueError, match=r"continuous values .* GRURegressor"):
        fastgru.GRUClassifier(**SMALL).fit(X, y)
    clf = fastgru.GRUClassifier(**SMALL).fit(X, (y > 0).astype(float))  # 0.0 / 1.0 are labels
    assert clf.classes_.tolist() == [0.0, 1.0]


def test_sklearn_pipeline_and_grid_search(rng):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = classification_data(rng, N=64)
    flat = X.reshape(64, -1)  # e.g. a feature table with T*F columns
    pipe = make_pipeline(
        StandardScaler(), FunctionTransformer(lambda a: a.reshape(len(a), 8, 2)), fastgru.GRUClassifier(**SMALL)
    )
    assert pipe.fit(flat, y).score(flat, y) >= 0.5
    search = GridSearchCV(fastgru.GRURegressor(**SMALL), {"hidden_size": [4, 8], "lr": [1e-3, 1e-2]}, cv=2)
    search.fit(*regression_data(rng, N=32))
    assert set(search.best_params_) == {"hidden_size", "lr"} and len(search.cv_results_["params"]) == 4
    assert hasattr(search.best_estimator_, "model_")


def fitted_state(est):
    """Everything fit sets, as comparable values: the fitted attributes and the model's weights."""
    state = {k: v for k, v in vars(est).items() if k.endswith("_") or k == "_single_output"}
    state["model_"] = (est.model_.config, est.model_.params.copy())
    return state


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    for key, value in before.items():
        if key == "model_":
            assert after[key][0] == value[0] and np.array_equal(after[key][1], value[1])
        elif isinstance(value, np.ndarray):
            assert np.array_equal(after[key], value), key
        else:
            assert after[key] == value, key


@pytest.mark.parametrize(
    "change, exception",
    [
        (dict(loss="binary_crossentropy", X="nan"), ValueError),  # bad X after the loss is known
        (dict(y="four classes", validation_data="bad labels"), ValueError),  # new classes, bad validation
        (dict(lr=-1.0), ValueError),  # the optimizer refuses
        (dict(weight_decay="a"), TypeError),
        (dict(X="five features", hidden_size=10**5), MemoryError),  # a model that cannot be built
    ],
)
def test_a_failed_refit_leaves_a_fitted_classifier_as_it_was(rng, change, exception):
    X, y = classification_data(rng, N=32)
    clf = fastgru.GRUClassifier(**SMALL).fit(X, y)
    before, proba = fitted_state(clf), clf.predict_proba(X)
    change = dict(change)
    X2 = {"nan": np.full_like(X, np.nan), "five features": np.ones((32, 8, 5), np.float32)}.get(
        change.pop("X", None), X
    )
    y2 = np.array(list("abcd") * 8) if change.pop("y", None) else y
    if change.pop("validation_data", None):
        change["validation_data"] = (X[:4], np.array(list("wxyz")))
    clf.set_params(**change)
    with pytest.raises(exception):
        clf.fit(X2, y2)
    assert_same_state(before, fitted_state(clf))
    assert np.array_equal(clf.predict_proba(X), proba)


def test_a_failed_refit_leaves_a_fitted_regressor_as_it_was(rng):
    X, y = regression_data(rng, N=32)
    reg = fastgru.GRURegressor(**SMALL).fit(X, y)
    before, pred = fitted_state(reg), reg.predict(X)
    with pytest.raises(ValueError, match="validation_split"):
        reg.set_params(validation_split=0.01).fit(X, np.stack([y, y, y], axis=1))  # (N, 3) y, no rows to validate
    assert_same_state(before, fitted_state(reg))
    assert reg.predict(X).shape == (32,) and np.array_equal(reg.predict(X), pred)


def test_a_failed_first_fit_leaves_the_estimator_unfitted(rng):
    X, y = regression_data(rng, N=32)
    reg = fastgru.GRURegressor(**SMALL, lr=-1.0)
    with pytest.raises(ValueError):
        reg.fit(X, y)
    assert not [k for k in vars(reg) if k.endswith("_")]
    with pytest.raises(fastgru.estimators.NotFittedError):
        reg.predict(X)
