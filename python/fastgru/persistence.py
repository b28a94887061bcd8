"""Loading saved models: fastgru.load(path) for a GRUModel (GRUModel.save) or a fitted
estimator (GRURegressor.save / GRUClassifier.save). The file is one safetensors file
(fastgru.safetensors_format) with the weights under PyTorch-style names and, in its metadata,
"format": "fastgru", the model's config (JSON) and, for an estimator, its hyper-parameters and
fitted attributes (JSON under "estimator").
"""

import json

from .estimators import estimator_from_saved
from .model import FILE_FORMAT, GRUModel
from .safetensors_format import read_safetensors


def load(path):
    """The model (GRUModel) or fitted estimator (GRURegressor, GRUClassifier) saved at path,
    predicting bit-identically to the saved one. ValueError if the file is not one of ours."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FILE_FORMAT or "config" not in metadata:
        raise ValueError(f"{path}: a safetensors file, but not a fastgru model (no fastgru metadata)")
    try:
        model = GRUModel(**json.loads(metadata["config"]))
        model.load_state_dict(tensors)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the fastgru model in this file is inconsistent: {exc}") from None
    model.eval()
    if "estimator" in metadata:
        return estimator_from_saved(json.loads(metadata["estimator"]), model)
    return model
