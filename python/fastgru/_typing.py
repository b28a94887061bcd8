"""Type aliases of the public API's annotations."""

from typing import Any

import numpy as np
import numpy.typing as npt

# The parameters, gradients and outputs of a layer: float32 or float64 (its dtype).
FloatArray = npt.NDArray[np.floating[Any]]
# Sequence lengths, class labels.
IntArray = npt.NDArray[np.integer[Any]]
# A flat buffer's layout as the core gives it: [(name, offset, shape)] in buffer order.
Layout = list[tuple[str, int, tuple[int, ...]]]
