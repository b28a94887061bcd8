"""Saving and loading (fastgru.persistence, fastgru.safetensors_format): bit-identical round
trips, the safetensors format (checked with the safetensors package when installed), atomic
writes with ordinary permissions, clear errors for missing folders, truncated or foreign files."""

import json
import os
import pathlib
import pickle
import shutil
import struct
import tempfile
import warnings

import numpy as np
import pytest

import fastgru
from fastgru.safetensors_format import read_safetensors, write_safetensors


@pytest.fixture
def model():
    return fastgru.GRUModel(3, 5, 2, num_layers=2, bidirectional=True, return_sequences=True, seed=0).eval()


def test_model_round_trip_predicts_bit_identically(tmp_path, rng, model):
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = fastgru.load(path)
    assert isinstance(loaded, fastgru.GRUModel) and loaded.config == model.config
    x, lengths = rng.standard_normal((4, 7, 3)), np.array([7, 3, 1, 5])
    assert np.array_equal(loaded(x, lengths), model(x, lengths))
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary file left behind


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_safetensors_package_reads_our_files(tmp_path, model, dtype):
    st = pytest.importorskip("safetensors.numpy")
    m = fastgru.GRUModel(3, 5, 2, dtype=dtype, seed=1)
    path = str(tmp_path / "m.safetensors")
    m.save(path)
    tensors = st.load_file(path)
    assert tensors.keys() == m.state_dict().keys()
    for name, value in m.state_dict().items():
        assert tensors[name].dtype == np.dtype(dtype) and np.array_equal(tensors[name], value)
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        assert json.loads(f.metadata()["config"]) == m.config


def test_we_read_files_the_safetensors_package_writes(tmp_path, model):
    st = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "m.safetensors")
    st.save_file(
        {k: v.copy() for k, v in model.state_dict().items()},
        path,
        metadata={"format": "fastgru", "config": json.dumps(model.config)},
    )
    loaded = fastgru.load(path)
    assert np.array_equal(loaded.params, model.params)


def test_write_is_atomic(tmp_path, model, monkeypatch):
    path = tmp_path / "model.safetensors"
    model.save(path)
    original = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        fastgru.GRUModel(3, 5, 2, seed=9).save(path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["model.safetensors"]


def test_save_into_a_missing_folder_names_the_path(tmp_path, model):
    path = tmp_path / "no" / "such" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors: cannot save, the folder .*such does not exist"):
        model.save(path)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_permissions_open_would_give(tmp_path, model, umask):
    """0o666 less the umask, as a file created by open(); not mkstemp's private 0o600."""
    previous = os.umask(umask)
    try:
        model.save(tmp_path / "model.safetensors")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(previous)
    mode = os.stat(tmp_path / "model.safetensors").st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain").st_mode & 0o777


def test_truncated_and_foreign_files_raise_value_error(tmp_path, model):
    path = tmp_path / "model.safetensors"
    model.save(path)
    blob = path.read_bytes()
    bad = tmp_path / "bad"
    for data, why in [
        (blob[:-10], "truncated"),
        (blob[:5], "too short"),
        (blob[:20], "header length"),
        (b"PK\x03\x04" + b"\0" * 100, "header length"),
        (b"\x10" + b"\0" * 7 + b"not json!" * 2, "JSON"),
        (struct.pack("<Q", 2) + b"[]", "object"),
    ]:
        bad.write_bytes(data)
        with pytest.raises(ValueError, match=why):
            fastgru.load(bad)
    write_safetensors(bad, {"w": np.zeros(3)}, {"format": "something else"})
    with pytest.raises(ValueError, match="not a fastgru model"):
        fastgru.load(bad)
    write_safetensors(bad, {"gru.weight_ih_l0": np.zeros(3)}, {"format": "fastgru", "config": json.dumps(model.config)})
    with pytest.raises(ValueError, match="inconsistent"):
        fastgru.load(bad)


def test_reader_checks_offsets(tmp_path):
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}).encode()
    path = tmp_path / "x"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 12)
    with pytest.raises(ValueError, match="do not match shape"):
        read_safetensors(path)
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 12)
    with pytest.raises(ValueError, match="starts at 4"):
        read_safetensors(path)


def test_estimator_round_trip(tmp_path, rng):
    X = [rng.standard_normal((n, 2)) for n in (5, 3, 8, 4, 6, 2)]
    y = np.array(["cat", "dog", "cat", "emu", "dog", "emu"])
    clf = fastgru.GRUClassifier(hidden_size=4, epochs=2, batch_size=4, random_state=0).fit(X, y)
    clf.save(tmp_path / "clf.safetensors")
    loaded = fastgru.load(tmp_path / "clf.safetensors")
    assert isinstance(loaded, fastgru.GRUClassifier) and loaded.get_params() == clf.get_params()
    assert loaded.classes_.tolist() == ["cat", "dog", "emu"] and loaded.history_ == clf.history_
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.predict(X), clf.predict(X))


def test_fitted_estimator_pickles(rng):
    X, y = rng.standard_normal((12, 4, 2)), rng.standard_normal(12)
    reg = fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(reg))
    assert np.array_equal(copy.predict(X), reg.predict(X)) and copy.history_ == reg.history_


def test_hyper_parameters_given_as_numpy_scalars_save_and_load(tmp_path, rng):
    X, y = rng.standard_normal((12, 4, 2)), rng.standard_normal(12)
    reg = fastgru.GRURegressor(
        hidden_size=np.int64(4),
        epochs=np.int32(1),
        lr=np.float32(0.01),
        shuffle=np.bool_(True),
        random_state=np.int64(0),
    ).fit(X, y)
    reg.save(tmp_path / "reg.safetensors")
    loaded = fastgru.load(tmp_path / "reg.safetensors")
    assert loaded.get_params() == reg.get_params()
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def rewrite_estimator(path, edit):
    """Rewrites the estimator metadata of a saved file through edit(saved dict)."""
    tensors, metadata = read_safetensors(path)
    saved = json.loads(metadata["estimator"])
    edit(saved)
    metadata["estimator"] = json.dumps(saved)
    write_safetensors(path, tensors, metadata)


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda s: s["fitted"].update(n_features_in_=7), "n_features_in_"),
        (lambda s: s["fitted"].update(classes_=[0, 1]), "_n_logits"),
        (lambda s: s["fitted"].update(classes_=["b", "a", "c"]), "classes_"),
        (lambda s: s["fitted"].update(classes_=[["a"], ["b"], ["c"]]), "classes_"),
        (lambda s: s["fitted"].update(loss_="hinge"), "loss_"),
        (lambda s: s["params"].update(batch_size=0), "batch_size"),
        (lambda s: s["params"].update(hidden_size=5), "hidden_size"),
        (lambda s: s["params"].update(return_sequences=True), "return_sequences"),
        (lambda s: s["fitted"].update(interrupted_="no"), "interrupted_"),
    ],
)
def test_estimator_files_whose_attributes_disagree_with_their_model_raise_value_error(tmp_path, rng, edit, why):
    X = rng.standard_normal((12, 4, 2))
    clf = fastgru.GRUClassifier(hidden_size=4, epochs=1, random_state=0).fit(X, np.array(list("abc") * 4))
    path = tmp_path / "clf.safetensors"
    clf.save(path)
    rewrite_estimator(path, edit)
    with pytest.raises(ValueError, match=why):
        fastgru.load(path)


def test_regressor_files_with_inconsistent_outputs_raise_value_error(tmp_path, rng):
    X = rng.standard_normal((12, 4, 2))
    reg = fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0).fit(X, rng.standard_normal((12, 2)))
    path = tmp_path / "reg.safetensors"
    reg.save(path)
    for edit in (lambda s: s["fitted"].update(n_outputs_=3), lambda s: s["fitted"].update(single_output=True)):
        reg.save(path)
        rewrite_estimator(path, edit)
        with pytest.raises(ValueError, match="inconsistent"):
            fastgru.load(path)


def test_non_finite_weights_are_neither_saved_nor_loaded(tmp_path, model):
    path = tmp_path / "model.safetensors"
    model.save(path)
    tensors, metadata = read_safetensors(path)
    tensors["gru.weight_hh_l1"][0, 0] = np.nan
    write_safetensors(path, tensors, metadata)
    with pytest.raises(ValueError, match=r"gru\.weight_hh_l1 holds NaN or infinity"):
        fastgru.load(path)
    broken = fastgru.GRUModel(3, 5, 2, seed=0)
    broken.params[-1] = np.inf
    with pytest.raises(ValueError, match="holds NaN or infinity"):
        broken.save(tmp_path / "broken.safetensors")
    assert not (tmp_path / "broken.safetensors").exists()


def test_deeply_nested_json_raises_value_error(tmp_path, model):
    path = tmp_path / "nested"
    deep = b"[" * 100000 + b"]" * 100000
    path.write_bytes(struct.pack("<Q", len(deep)) + deep)
    with pytest.raises(ValueError, match="nested too deeply"):
        fastgru.load(path)
    write_safetensors(path, model.state_dict(), {"format": "fastgru", "config": "[" * 100000 + "]" * 100000})
    with pytest.raises(ValueError, match="inconsistent"):
        fastgru.load(path)


def test_huge_foreign_files_and_devices_are_refused_without_reading_them(tmp_path):
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(2**40)  # a sparse terabyte: reading it whole would never end
    with pytest.raises(ValueError, match="truncated"):
        fastgru.load(path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file"):
            fastgru.load("/dev/zero")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")  # opening it would wait for a writer forever
        with pytest.raises(ValueError, match="not a regular file"):
            fastgru.load(tmp_path / "pipe")


def test_saving_over_a_file_keeps_its_permissions_and_follows_links(tmp_path, model):
    path = tmp_path / "private.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    model.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and isinstance(fastgru.load(path), fastgru.GRUModel)
    link = tmp_path / "link.safetensors"
    os.symlink(path, link)
    fastgru.GRUModel(3, 5, 2, seed=1).save(link)
    assert os.path.islink(link) and np.array_equal(fastgru.load(path).params, fastgru.GRUModel(3, 5, 2, seed=1).params)
    assert sorted(os.listdir(tmp_path)) == ["link.safetensors", "private.safetensors"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="runs the save as another user in a forked child")
def test_a_file_that_may_not_be_written_raises_permission_error(model):
    """As open(path, "wb") would. Root may write anything, so then a forked child that has
    become user nobody saves (in a folder of the system's temporary one, which it can reach)."""
    folder = pathlib.Path(tempfile.mkdtemp())
    try:
        check_read_only_file(folder, model)
    finally:
        shutil.rmtree(folder)


def check_read_only_file(folder, model):
    path = folder / "read-only.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o444)
    os.chmod(folder, 0o777)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # JAX, if another test loaded it, warns at every fork of its (multithreaded) process; the
        # child here runs only fastgru's save and leaves with os._exit, never touching JAX.
        warnings.filterwarnings("ignore", "os.fork\\(\\) was called", RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # the child: report what save raised, then leave at once
        outcome = b"no error"
        try:
            if os.geteuid() == 0:
                os.setuid(65534)
            model.save(path)
        except PermissionError:
            outcome = b"PermissionError"
        except BaseException as exc:
            outcome = repr(exc).encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read()
    os.waitpid(pid, 0)
    assert outcome == b"PermissionError"
    assert path.read_bytes() == b"old" and os.listdir(folder) == ["read-only.safetensors"]


def test_long_names_bytes_paths_and_empty_paths(tmp_path, model):
    long = tmp_path / ("m" * 240 + ".safetensors")  # 252 characters: a valid name, at most 255
    model.save(long)
    assert np.array_equal(fastgru.load(long).params, model.params)
    model.save(os.fsencode(tmp_path / "bytes.safetensors"))
    assert np.array_equal(fastgru.load(tmp_path / "bytes.safetensors").params, model.params)
    before = sorted(os.listdir(tmp_path.parent))
    with pytest.raises(FileNotFoundError):
        model.save("")
    assert sorted(os.listdir(tmp_path.parent)) == before
    assert len(os.listdir(tmp_path)) == 2
