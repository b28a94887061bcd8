"""Loading saved models: fastgru.load(path) for a GRUModel (GRUModel.save) or a fitted
estimator (GRURegressor.save / GRUClassifier.save). The file is one safetensors file
(fastgru.safetensors_format) with the weights under PyTorch-style names and, in its metadata,
"format": "fastgru", the model's config (JSON) and, for an estimator, its hyper-parameters and
fitted attributes (JSON under "estimator").
"""

import json
import os
from typing import Any

from ._flat import layout_end
from .estimators import GRUEstimator, estimator_from_saved
from .model import FILE_FORMAT, GRUModel, install_quantized_state
from .safetensors_format import read_safetensors


def load(path: str | os.PathLike[str]) -> GRUModel | GRUEstimator:
    """The model (GRUModel) or fitted estimator (GRURegressor, GRUClassifier) saved at path,
    predicting bit-identically to the saved one. ValueError if the file is not one of ours."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FILE_FORMAT or "config" not in metadata:
        raise ValueError(f"{path}: a safetensors file, but not a fastgru model (no fastgru metadata)")
    try:
        config: Any = json.loads(metadata["config"])
        if not isinstance(config, dict):
            raise ValueError(f"config: expected a JSON object, got {config!r}")
        quantization = metadata.get("quantization")
        if quantization not in (None, "int8"):
            raise ValueError(f"quantization: expected 'int8' or none, got {quantization!r}")
        # Sizes first, so that a file cannot make us allocate more than it holds (an int8 file
        # also holds one scale per weight row).
        stored = sum(t.size for t in tensors.values())
        layout = GRUModel.param_layout(
            **{
                k: config[k]
                for k in ("input_size", "hidden_size", "output_size", "num_layers", "bidirectional", "bias")
                if k in config
            }
        )
        needed = layout_end(layout) + (sum(s[0] for _, _, s in layout if len(s) == 2) if quantization else 0)
        if needed != stored:
            raise ValueError(f"its config needs {needed} values, the file holds {stored}")
        model = GRUModel(**config)
        if quantization:
            install_quantized_state(model, tensors)
        else:
            model.load_state_dict(tensors)
            model.check_finite_weights()
        model.eval()
        if "estimator" not in metadata:
            return model
        saved: Any = json.loads(metadata["estimator"])
        if not isinstance(saved, dict):
            raise ValueError(f"estimator: expected a JSON object, got {saved!r}")
        return estimator_from_saved(saved, model)
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
        raise ValueError(f"{path}: the fastgru model in this file is inconsistent: {exc!r}") from None
