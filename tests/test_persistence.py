"""Saving and loading (fastgru.persistence, fastgru.safetensors_format): bit-identical round
trips, the safetensors format (checked with the safetensors package when installed), atomic
writes with ordinary permissions, clear errors for missing folders, truncated or foreign files."""

import json
import os
import pickle
import struct

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
    assert os.listdir(tmp_path) == ["model.safetensors"]      # no temporary file left behind


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
    st.save_file({k: v.copy() for k, v in model.state_dict().items()}, path,
                 metadata={"format": "fastgru", "config": json.dumps(model.config)})
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
    for data, why in [(blob[:-10], "truncated"), (blob[:5], "too short"), (blob[:20], "header length"),
                      (b"PK\x03\x04" + b"\0" * 100, "header length"), (b"\x10" + b"\0" * 7 + b"not json!" * 2, "JSON"),
                      (struct.pack("<Q", 2) + b"[]", "object")]:
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
