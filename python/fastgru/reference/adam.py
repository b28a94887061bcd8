"""NumPy reference Adam/AdamW: the update of torch.optim.Adam (single-tensor path), written out."""

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def adam_step(
    params: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    amsgrad: bool,
    grad_scale: float = 1.0,
) -> None:
    """In-place update of params (and the moment buffers) with torch.optim.Adam semantics (AdamW when decoupled_weight_decay).
    step: the step number AFTER increment (1 for the first step). max_exp_avg_sq used only when amsgrad (may be None otherwise).
    The update uses grad * grad_scale (gradient clipping as a factor; grad itself is not modified)."""
    if grad_scale != 1.0:
        grad = grad * grad.dtype.type(grad_scale)
    if weight_decay != 0:
        if decoupled_weight_decay:
            params *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * params
    exp_avg += (1 - beta1) * (grad - exp_avg)  # torch: exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    if amsgrad:
        assert max_exp_avg_sq is not None, "max_exp_avg_sq: required with amsgrad"
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    else:
        v = exp_avg_sq
    denom = np.sqrt(v) / bias_correction2**0.5 + eps
    params -= step_size * (exp_avg / denom)
