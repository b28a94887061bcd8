"""Export to ONNX: `fastgru.onnx.export(obj, path, *, lengths=False, opset=None)`.

    fastgru.onnx.export(regressor, "model.onnx")            # pip install ".[onnx]" in a clone
    session = onnxruntime.InferenceSession("model.onnx")
    y = session.run(["y"], {"X": X.astype(np.float32)})[0]  # == regressor.predict(X)

What is exported, and the graph's inputs and outputs (N, B and T are symbolic: one file serves
every batch size and sequence length):
- GRURegressor: "X" float32 (N, T, F) -> "y" = predict(X): (N,) / (N, O), or per step (N, T) /
  (N, T, O) with return_sequences.
- GRUClassifier: "X" -> "probabilities" = predict_proba(X): (N, C) or per step (N, T, C). The
  labels are classifier.classes_[probabilities.argmax(-1)]: classes_ (any labels np.unique can
  sort) is not in the graph, because ONNX outputs hold numbers, not arbitrary labels.
- GRUModel: "x" (B, T, F) -> "out" = model(x) in eval mode: (B, T, O) or (B, O).
- fastgru.GRU: "x" in the layer's layout ((T, B, I), or (B, T, I) with batch_first) and "h0"
  (L*D, B, H) -> "y", "h_n" = layer(x, h0).
With lengths=True every graph has a second input "lengths" int32 (N,) or (B,): the valid steps
of each sequence, as the `lengths` argument of fastgru (outputs at padded steps are those of
fastgru with lengths: zeros for a layer, the head's bias for per-step model outputs). The
estimators do nothing else to their inputs or targets (no scaling), so the graph is the whole
prediction.

The graph is one ONNX GRU node per layer (weights reordered from r, z, n to ONNX's z, r, h;
linear_before_reset = reset_after; bidirectional layers as one bidirectional node), Transpose and
Reshape between fastgru's layouts and ONNX's (T, D, B, H), and the head as MatMul + Add (+ Sigmoid
or Softmax for probabilities). A per-sequence head reads the top layer's Y_h: the state at each
sequence's last valid step, and for a bidirectional layer the forward and reverse final states
concatenated, as fastgru does. ONNX Runtime's GRU is float32 only: a float64 model is written in
float32, with a warning. A model with compute_dtype="bfloat16" is written with its float32 weights
and runs in float32 under ONNX Runtime: bfloat16 products are a run-time choice of fastgru's, not
part of the model. The file is written atomically (complete or not at all).
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:
    raise ImportError(
        'fastgru.onnx needs the onnx package: pip install ".[onnx]" in a clone of fastgru '
        '("fastgru[onnx]" once it is on the package index), or pip install onnx onnxruntime'
    ) from exc

from ._files import write_atomically
from .convert import to_onnx
from .estimators import GRUClassifier, GRURegressor
from .gru import GRU
from .model import GRUModel

Weights = Mapping[str, npt.NDArray[np.float32]]

MIN_OPSET = 13  # Squeeze-13 and Slice-13 take their axes as inputs; GRU-7 already has all we use
DEFAULT_OPSET = 17  # widely supported by ONNX Runtime releases; newer ones change nothing used here


def export(
    obj: GRURegressor | GRUClassifier | GRUModel | GRU,
    path: str | os.PathLike[str],
    *,
    lengths: bool = False,
    opset: int | None = None,
) -> None:
    """Writes obj (a fitted GRURegressor / GRUClassifier, a GRUModel or a fastgru.GRU layer) to
    path as an ONNX model (see the module docstring for its inputs and outputs). lengths: add the
    int32 input "lengths". opset: the ONNX opset (default 17). Raises TypeError for any other
    object, the estimator's NotFittedError (a ValueError) for an unfitted one and ValueError for
    an int8 object (fastgru.quantize); nothing is written then."""
    version = _check_opset(opset)
    if not isinstance(lengths, (bool, np.bool_)):
        raise TypeError(f"lengths: expected True or False, got {lengths!r}")
    if not isinstance(obj, (GRURegressor, GRUClassifier, GRUModel, GRU)):
        raise TypeError(
            f"export: expected a fitted fastgru.GRURegressor or GRUClassifier, a fastgru.GRUModel "
            f"or a fastgru.GRU layer, got {type(obj).__name__}"
        )
    module: Any = getattr(obj, "model_", obj)  # an unfitted estimator is refused by its graph builder
    if getattr(module, "quantization", None) is not None:
        raise ValueError(
            f"export: this {type(obj).__name__} is quantized ({module.quantization}); ONNX Runtime's "
            "GRU has no int8 weights: export the float model it was quantized from"
        )
    if isinstance(obj, (GRURegressor, GRUClassifier)):
        graph = _estimator_graph(obj, bool(lengths))
    elif isinstance(obj, GRUModel):
        graph = _model_graph(obj, bool(lengths))
    else:
        graph = _layer_graph(obj, bool(lengths))
    model = helper.make_model(graph, producer_name="fastgru", opset_imports=[helper.make_opsetid("", version)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    write_atomically(path, [model.SerializeToString()])


def _check_opset(opset: object) -> int:
    if opset is None:
        return DEFAULT_OPSET
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an int in {MIN_OPSET}..{newest} (this onnx package's newest), got {opset!r}")
    return int(opset)


class _Graph:
    """Nodes and float32 initializers under fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names = 0

    def _fresh(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def constant(self, hint: str, array: npt.ArrayLike, dtype: npt.DTypeLike = np.float32) -> str:
        name = self._fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None, **attributes: Any) -> str:
        """Adds one node; returns its (first) output's name."""
        return self.op_outputs(op_type, inputs, outputs or [self._fresh(op_type.lower())], **attributes)[0]

    def op_outputs(
        self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int, **attributes: Any
    ) -> list[str]:
        """Adds one node with these outputs (or this many fresh ones); returns their names."""
        names = [self._fresh(op_type.lower()) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op_type, inputs, names, **attributes))
        return names

    def build(
        self, name: str, inputs: Sequence[onnx.ValueInfoProto], outputs: Sequence[onnx.ValueInfoProto]
    ) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)


def _float32_weights(obj: object, module: GRU | GRUModel) -> dict[str, npt.NDArray[np.float32]]:
    """module's state_dict in float32 (ONNX Runtime's GRU has no float64), warning (naming the
    exported obj) when converted."""
    if module.dtype == "float64":
        warnings.warn(
            f"export: {type(obj).__name__} is float64; ONNX Runtime's GRU is float32 only, so the "
            "file holds its weights in float32 (results differ from fastgru's by float32 rounding)",
            UserWarning,
            stacklevel=4,
        )  # _float32_weights < graph builder < export < caller
    return {name: np.asarray(value, np.float32) for name, value in module.state_dict().items()}


def _gru_layers(
    g: _Graph, layer: GRU, weights: Weights, x: str, lengths: str | None, h0: str | None
) -> tuple[str, list[str]]:
    """The ONNX GRU nodes of fastgru.GRU `layer` (weights: its float32 state_dict, names without
    prefix) on x (T, B, I). Returns (y (T, B, D*H), [Y_h (D, B, H) of each layer])."""
    D = layer.num_directions
    y, finals = x, []
    for k in range(layer.num_layers):
        w, r, b = to_onnx(weights, layer=k, bidirectional=layer.bidirectional)
        initial = ""
        if h0 is not None:
            initial = g.op(
                "Slice",
                [
                    h0,
                    g.constant("start", [k * D], np.int64),
                    g.constant("end", [(k + 1) * D], np.int64),
                    g.constant("axis", [0], np.int64),
                ],
            )
        seq_y, y_h = g.op_outputs(
            "GRU",
            [y, g.constant(f"W_l{k}", w), g.constant(f"R_l{k}", r), g.constant(f"B_l{k}", b), lengths or "", initial],
            2,
            hidden_size=layer.hidden_size,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=int(layer.reset_after),
        )
        # Y (T, D, B, H) -> (T, B, D*H): each step's forward then reverse features, as fastgru.
        y = g.op("Reshape", [g.op("Transpose", [seq_y], perm=[0, 2, 1, 3]), g.constant("shape", [0, 0, -1], np.int64)])
        finals.append(y_h)
    return y, finals


def _last_state(g: _Graph, finals: list[str], D: int) -> str:
    """The top layer's final states as (B, D*H): forward, then reverse."""
    top = finals[-1]  # (D, B, H)
    if D == 1:
        return g.op("Squeeze", [top, g.constant("axes", [0], np.int64)])
    return g.op("Reshape", [g.op("Transpose", [top], perm=[1, 0, 2]), g.constant("shape", [0, -1], np.int64)])


def _model_outputs(g: _Graph, model: GRUModel, weights: Weights, x_btf: str, lengths: str | None) -> str:
    """GRUModel's eval-mode output on x (B, T, F): (B, T, O) or (B, O) (logits)."""
    gru_weights = {k[len("gru.") :]: v for k, v in weights.items() if k.startswith("gru.")}
    x = g.op("Transpose", [x_btf], perm=[1, 0, 2])
    y, finals = _gru_layers(g, model.gru, gru_weights, x, lengths, None)
    features = y if model.return_sequences else _last_state(g, finals, model.gru.num_directions)
    out = g.op("MatMul", [features, g.constant("head_weight_t", weights["head.weight"].T)])
    if "head.bias" in weights:
        out = g.op("Add", [out, g.constant("head_bias", weights["head.bias"])])
    if model.return_sequences:
        out = g.op("Transpose", [out], perm=[1, 0, 2])  # (T, B, O) -> (B, T, O)
    return out


def _float_input(name: str, dims: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _lengths_input(batch: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("lengths", TensorProto.INT32, [batch])


def _estimator_graph(estimator: GRURegressor | GRUClassifier, lengths: bool) -> onnx.GraphProto:
    estimator._check_fitted()  # NotFittedError, a ValueError, as predict raises
    model = estimator.model_
    weights = _float32_weights(estimator, model)
    g = _Graph()
    F = estimator.n_features_in_
    out = _model_outputs(g, model, weights, "X", "lengths" if lengths else None)
    steps: list[int | str] = ["N", "T"] if estimator.return_sequences else ["N"]
    if isinstance(estimator, GRUClassifier):
        if estimator.loss_ == "binary_crossentropy":  # one logit: P(classes_[1])
            p = g.op("Sigmoid", [out])
            out = g.op("Concat", [g.op("Sub", [g.constant("one", [1.0]), p]), p], axis=-1)
        else:
            out = g.op("Softmax", [out], axis=-1)
        g.op("Identity", [out], outputs=["probabilities"])
        outputs = [_float_input("probabilities", steps + [len(estimator.classes_)])]
    else:
        if estimator._single_output:
            g.op("Squeeze", [out, g.constant("axes", [-1], np.int64)], outputs=["y"])
            outputs = [_float_input("y", steps)]
        else:
            g.op("Identity", [out], outputs=["y"])
            outputs = [_float_input("y", steps + [estimator.n_outputs_])]
    inputs = [_float_input("X", ["N", "T", F])] + ([_lengths_input("N")] if lengths else [])
    return g.build(type(estimator).__name__, inputs, outputs)


def _model_graph(model: GRUModel, lengths: bool) -> onnx.GraphProto:
    g = _Graph()
    weights = _float32_weights(model, model)
    out = _model_outputs(g, model, weights, "x", "lengths" if lengths else None)
    g.op("Identity", [out], outputs=["out"])
    O = model.head.out_features
    inputs = [_float_input("x", ["B", "T", model.gru.input_size])] + ([_lengths_input("B")] if lengths else [])
    return g.build("GRUModel", inputs, [_float_input("out", ["B", "T", O] if model.return_sequences else ["B", O])])


def _layer_graph(layer: GRU, lengths: bool) -> onnx.GraphProto:
    g = _Graph()
    weights = _float32_weights(layer, layer)
    x = g.op("Transpose", ["x"], perm=[1, 0, 2]) if layer.batch_first else "x"
    y, finals = _gru_layers(g, layer, weights, x, "lengths" if lengths else None, "h0")
    if layer.batch_first:
        y = g.op("Transpose", [y], perm=[1, 0, 2])
    g.op("Identity", [y], outputs=["y"])
    if len(finals) > 1:
        g.op("Concat", finals, outputs=["h_n"], axis=0)
    else:
        g.op("Identity", finals, outputs=["h_n"])
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    seq: list[int | str] = ["B", "T"] if layer.batch_first else ["T", "B"]
    inputs = [_float_input("x", seq + [I]), _float_input("h0", [L * D, "B", H])]
    inputs += [_lengths_input("B")] if lengths else []
    return g.build("GRU", inputs, [_float_input("y", seq + [D * H]), _float_input("h_n", [L * D, "B", H])])
