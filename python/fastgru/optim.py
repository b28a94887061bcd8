"""fastgru.Adam: Adam/AdamW as one fused pass over flat parameter, gradient and moment buffers."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from . import _core
from ._backends import NUMPY as reference
from ._checks import check_non_negative, core_entry
from ._flat import FlatParameters, check_separate
from ._typing import FloatArray

# The fused step of one backend: (config, state, params, grad, grad_scale); it takes step number
# state.step + 1 and counts it.
AdamUpdate = Callable[[_core.AdamConfig, _core.AdamState, FloatArray, FloatArray, float], None]


class HasFlatBuffers(Protocol):
    """What Adam updates: an object with flat parameter and gradient buffers (fastgru.GRU, Dense,
    GRUModel)."""

    @property
    def params(self) -> FloatArray: ...

    @property
    def grad(self) -> FloatArray: ...


class Adam:
    """torch.optim.Adam (torch.optim.AdamW when decoupled_weight_decay=True) as one fused pass
    over flat buffers.

    opt = Adam(layer_or_buffers, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               decoupled_weight_decay=False, amsgrad=False)
    opt.step(); opt.zero_grad()

    layer_or_buffers: anything with flat `.params` and `.grad` buffers (fastgru.GRU, Dense,
        GRUModel), or a (params, grad) pair of writable contiguous 1-D float32 or float64 arrays
        of the same dtype and size; params is updated in place. A layer's backend is used
        ("numpy" runs the reference fastgru.reference.adam).
    lr, eps, weight_decay: finite numbers >= 0; betas: a pair in [0, 1).

    step() does, elementwise, with t the step count (1 for the first step) and g = grad:
        g = g + weight_decay * p                  (Adam), or p = p * (1 - lr * weight_decay) (AdamW)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        v_used = max(v_used, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_used) / sqrt(1 - beta2**t) + eps)
    zero_grad() sets grad to 0. The hyper-parameters are `config` (a fastgru._core.AdamConfig,
    also read as lr, betas, eps, weight_decay, decoupled_weight_decay, amsgrad; setting lr replaces
    it), the step count and moments `state` (a fastgru._core.AdamState, also read as step_count,
    exp_avg, exp_avg_sq, max_exp_avg_sq): the objects the compiled training step takes. state_dict() / load_state_dict(state) save and restore the step
    count and the moments (exp_avg, exp_avg_sq, and max_exp_avg_sq with amsgrad).

    Errors: TypeError for buffers that are not float32/float64 NumPy arrays or an object without
    them; ValueError for buffers that are not writable contiguous 1-D arrays of equal dtype and
    size, or a bad lr, betas, eps or weight_decay."""

    def __init__(
        self,
        layer_or_buffers: HasFlatBuffers | tuple[FloatArray, FloatArray] | list[FloatArray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        amsgrad: bool = False,
    ) -> None:
        params: object
        grad: object
        if isinstance(layer_or_buffers, (tuple, list)) and len(layer_or_buffers) == 2:
            params, grad = layer_or_buffers
            self.backend: str = "cpp"
        elif hasattr(layer_or_buffers, "params") and hasattr(layer_or_buffers, "grad"):
            if isinstance(layer_or_buffers, FlatParameters):
                layer_or_buffers._check_trainable("Adam")  # an int8 copy (fastgru.quantize) does not train
            params, grad = layer_or_buffers.params, layer_or_buffers.grad
            self.backend = getattr(layer_or_buffers, "backend", "cpp")
        else:
            raise TypeError(
                "layer_or_buffers: expected an object with .params and .grad, or a (params, grad) pair of 1-D arrays"
            )
        for name, buf in (("params", params), ("grad", grad)):
            if not isinstance(buf, np.ndarray) or buf.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name}: expected a float32 or float64 numpy array")
            if buf.ndim != 1 or not buf.flags.c_contiguous or not buf.flags.writeable:
                raise ValueError(
                    f"{name}: expected a writable contiguous 1-D array (updated in place), got shape {buf.shape}"
                )
        assert isinstance(params, np.ndarray) and isinstance(grad, np.ndarray)
        if params.dtype != grad.dtype or params.shape != grad.shape:
            raise ValueError(
                f"grad: expected the dtype and shape of params ({params.dtype}, {params.shape}), "
                f"got ({grad.dtype}, {grad.shape})"
            )
        check_separate(grad, params, "grad", "params")
        beta1, beta2 = _check_betas(betas)
        for name, value in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay)):
            check_non_negative(value, name)
        self.params: FloatArray = params
        self.grad: FloatArray = grad
        self._update: AdamUpdate = core_entry("adam_step", params.dtype) if self.backend == "cpp" else _reference_step
        self.config = _core.AdamConfig(
            lr=float(lr),
            beta1=beta1,
            beta2=beta2,
            eps=float(eps),
            weight_decay=float(weight_decay),
            decoupled_weight_decay=bool(decoupled_weight_decay),
            amsgrad=bool(amsgrad),
        )
        self.state = _core.AdamState(
            np.zeros_like(params), np.zeros_like(params), np.zeros_like(params) if self.config.amsgrad else None
        )

    @property
    def lr(self) -> float:
        return self.config.lr

    @lr.setter
    def lr(self, value: float) -> None:
        """A new learning rate (a schedule's), for the following steps."""
        c = self.config
        self.config = _core.AdamConfig(
            lr=check_non_negative(value, "lr"),
            beta1=c.beta1,
            beta2=c.beta2,
            eps=c.eps,
            weight_decay=c.weight_decay,
            decoupled_weight_decay=c.decoupled_weight_decay,
            amsgrad=c.amsgrad,
        )

    @property
    def betas(self) -> tuple[float, float]:
        return self.config.beta1, self.config.beta2

    @property
    def eps(self) -> float:
        return self.config.eps

    @property
    def weight_decay(self) -> float:
        return self.config.weight_decay

    @property
    def decoupled_weight_decay(self) -> bool:
        return self.config.decoupled_weight_decay

    @property
    def amsgrad(self) -> bool:
        return self.config.amsgrad

    @property
    def step_count(self) -> int:
        """The number of steps taken."""
        return self.state.step

    @property
    def exp_avg(self) -> FloatArray:
        return self.state.exp_avg

    @property
    def exp_avg_sq(self) -> FloatArray:
        return self.state.exp_avg_sq

    @property
    def max_exp_avg_sq(self) -> FloatArray | None:
        return self.state.max_exp_avg_sq

    def step(self, grad_scale: float = 1.0) -> None:
        """One update of params from grad * grad_scale (gradient clipping as a factor; grad itself
        is not modified), in place. A step that raises is not counted."""
        self._update(self.config, self.state, self.params, self.grad, check_non_negative(grad_scale, "grad_scale"))

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def state_dict(self) -> dict[str, Any]:
        """Moments and step count (copies), for checkpoints."""
        state: dict[str, Any] = {
            "step": self.step_count,
            "exp_avg": self.exp_avg.copy(),
            "exp_avg_sq": self.exp_avg_sq.copy(),
        }
        if self.state.max_exp_avg_sq is not None:
            state["max_exp_avg_sq"] = self.state.max_exp_avg_sq.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores state_dict()'s step count and moments; everything is checked first, so a bad
        state (TypeError, ValueError) leaves the optimizer unchanged."""
        keys = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if self.amsgrad else set())
        if set(state) != keys:
            raise ValueError(f"load_state_dict: expected keys {sorted(keys)}, got {sorted(state)}")
        step = state["step"]
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"state['step']: expected an int, got {step!r}")
        if step < 0:
            raise ValueError(f"state['step']: expected an int >= 0, got {step}")
        arrays = {}
        for key in sorted(keys - {"step"}):
            arr = np.asarray(state[key])
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"state['{key}']: expected real numbers, got dtype {arr.dtype}")
            if arr.shape != self.params.shape:
                raise ValueError(f"state['{key}']: expected shape {self.params.shape}, got {arr.shape}")
            arr = arr.astype(self.params.dtype)
            if not np.isfinite(arr).all() or (key != "exp_avg" and (arr < 0).any()):
                raise ValueError(
                    f"state['{key}']: expected finite values"
                    + ("" if key == "exp_avg" else " >= 0 (a mean of squares)")
                )
            arrays[key] = arr
        self.state.step = int(step)
        for key, arr in arrays.items():
            getattr(self.state, key)[...] = arr


def _reference_step(
    config: _core.AdamConfig, state: _core.AdamState, params: FloatArray, grad: FloatArray, grad_scale: float
) -> None:
    """The NumPy reference's update (backend="numpy"), with the compiled step's signature."""
    reference.adam_step(
        params,
        grad,
        state.exp_avg,
        state.exp_avg_sq,
        state.max_exp_avg_sq,
        state.step + 1,
        lr=config.lr,
        beta1=config.beta1,
        beta2=config.beta2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        decoupled_weight_decay=config.decoupled_weight_decay,
        amsgrad=config.amsgrad,
        grad_scale=grad_scale,
    )
    state.step += 1


def _check_betas(betas: Iterable[float]) -> tuple[float, float]:
    try:
        beta1, beta2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"betas: expected a pair of numbers in [0, 1), got {betas!r}") from None
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise ValueError(f"betas: expected a pair of numbers in [0, 1), got {betas!r}")
    return beta1, beta2
