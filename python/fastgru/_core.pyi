"""
fastgru's compiled core: GRU forward/backward, Dense head, losses, fused Adam, the whole model's training step, GEMM, threading
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['AdamConfig', 'AdamState', 'BUILD_TYPE', 'COMPILER', 'GruConfig', 'MAX_ELEMENTS', 'MAX_LAYERS', 'Model_float32', 'Model_float64', 'active_isa', 'adam_step_float32', 'adam_step_float64', 'available_isas', 'core_lengths', 'dense_backward_float32', 'dense_backward_float64', 'dense_forward_float32', 'dense_forward_float64', 'dense_param_layout', 'get_num_threads', 'gru_backward_float32', 'gru_backward_float64', 'gru_backward_kept_float32', 'gru_backward_kept_float64', 'gru_forward_float32', 'gru_forward_float64', 'gru_forward_int8_float32', 'gru_forward_int8_float64', 'gru_forward_keeping_float32', 'gru_forward_keeping_float64', 'gru_pack_int8', 'gru_param_count', 'gru_param_layout', 'gru_step_float32', 'gru_step_float64', 'gru_step_int8_float32', 'gru_step_int8_float64', 'gru_workspace_size', 'kept_workspace_counts', 'loss_float32', 'loss_float64', 'model_param_layout', 'release_memory', 'set_isa', 'set_num_threads', 'use_openmp_threads', 'uses_openmp_threads', 'xla_ffi_handlers']
class GruConfig:
    def __getstate__(self) -> tuple[int, int, int, bool, bool, bool, str]:
        ...
    def __init__(self, input_size: typing.SupportsInt | typing.SupportsIndex, hidden_size: typing.SupportsInt | typing.SupportsIndex, num_layers: typing.SupportsInt | typing.SupportsIndex = 1, bidirectional: bool = False, bias: bool = True, reset_after: bool = True, compute_dtype: str = 'float32') -> None:
        ...
    def __setstate__(self, arg0: tuple[typing.Any, ...]) -> None:
        ...
    @property
    def bias(self) -> bool:
        ...
    @property
    def bidirectional(self) -> bool:
        ...
    @property
    def compute_dtype(self) -> str:
        ...
    @property
    def hidden_size(self) -> int:
        ...
    @property
    def input_size(self) -> int:
        ...
    @property
    def num_layers(self) -> int:
        ...
    @property
    def reset_after(self) -> bool:
        ...
class AdamConfig:
    """
    Adam's hyper-parameters (torch.optim.Adam's; AdamW's with decoupled_weight_decay).
    """
    def __getstate__(self) -> tuple[float, float, float, float, float, bool, bool]:
        ...
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex = 0.001, beta1: typing.SupportsFloat | typing.SupportsIndex = 0.9, beta2: typing.SupportsFloat | typing.SupportsIndex = 0.999, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-08, weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.0, decoupled_weight_decay: bool = False, amsgrad: bool = False) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, arg0: tuple[typing.Any, ...]) -> None:
        ...
    @property
    def amsgrad(self) -> bool:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def decoupled_weight_decay(self) -> bool:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class AdamState:
    """
    Adam's state: the moments (float32/float64 1-D arrays of the parameters' size, updated in place; max_exp_avg_sq with amsgrad only) and the steps taken.
    """
    def __getstate__(self) -> tuple[numpy.typing.NDArray[typing.Any], numpy.typing.NDArray[typing.Any], numpy.typing.NDArray[typing.Any] | None, int]:
        ...
    def __init__(self, exp_avg: numpy.typing.NDArray[typing.Any], exp_avg_sq: numpy.typing.NDArray[typing.Any], max_exp_avg_sq: numpy.typing.NDArray[typing.Any] | None = None, step: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, arg0: tuple[typing.Any, ...]) -> None:
        ...
    @property
    def exp_avg(self) -> numpy.typing.NDArray[typing.Any]:
        ...
    @property
    def exp_avg_sq(self) -> numpy.typing.NDArray[typing.Any]:
        ...
    @property
    def max_exp_avg_sq(self) -> numpy.typing.NDArray[typing.Any] | None:
        ...
    @property
    def step(self) -> int:
        """
        The number of steps taken.
        """
    @step.setter
    def step(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class Model_float32:
    """
    GRU stack -> dropout -> Dense head -> loss over one flat parameter buffer (cpp/include/fastgru/model.h); x is time-major (T, B, I).
    """
    def __init__(self, gru: GruConfig, output_size: typing.SupportsInt | typing.SupportsIndex, return_sequences: bool, loss: str) -> None:
        ...
    def apply_gradients(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], loss: typing.SupportsFloat | typing.SupportsIndex, adam: AdamConfig, state: AdamState, max_norm: typing.SupportsFloat | typing.SupportsIndex) -> tuple[bool, float]:
        """
        Gradient norm, clipping (max_norm <= 0 or inf: none) folded into the fused Adam/AdamW step number state.step + 1, which state then counts, then grad zeroed. Returns (applied, grad_norm); applied is False, and nothing changed, when loss or the norm is not finite.
        """
    def compute_gradients(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None, target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None, gru_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, head_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, loss_normalizer: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> tuple[float, int]:
        """
        Forward, loss, backward: adds the gradient of (sum of the valid loss terms) / loss_normalizer (<= 0: the batch's own count) into grad. Returns (loss_sum, count).
        """
    def predict(self, params: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> numpy.typing.NDArray[numpy.float32]:
        """
        Inference: (T, B, O) with return_sequences, else (B, O).
        """
    def train_step(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None, target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None, gru_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, head_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, adam: AdamConfig, state: AdamState, max_norm: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, bool, float]:
        """
        compute_gradients then apply_gradients with the batch's mean loss. Returns (loss, applied, grad_norm).
        """
    @property
    def param_count(self) -> int:
        ...
class Model_float64:
    """
    GRU stack -> dropout -> Dense head -> loss over one flat parameter buffer (cpp/include/fastgru/model.h); x is time-major (T, B, I).
    """
    def __init__(self, gru: GruConfig, output_size: typing.SupportsInt | typing.SupportsIndex, return_sequences: bool, loss: str) -> None:
        ...
    def apply_gradients(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], loss: typing.SupportsFloat | typing.SupportsIndex, adam: AdamConfig, state: AdamState, max_norm: typing.SupportsFloat | typing.SupportsIndex) -> tuple[bool, float]:
        """
        Gradient norm, clipping (max_norm <= 0 or inf: none) folded into the fused Adam/AdamW step number state.step + 1, which state then counts, then grad zeroed. Returns (applied, grad_norm); applied is False, and nothing changed, when loss or the norm is not finite.
        """
    def compute_gradients(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None, target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None, gru_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, head_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, loss_normalizer: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> tuple[float, int]:
        """
        Forward, loss, backward: adds the gradient of (sum of the valid loss terms) / loss_normalizer (<= 0: the batch's own count) into grad. Returns (loss_sum, count).
        """
    def predict(self, params: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> numpy.typing.NDArray[numpy.float64]:
        """
        Inference: (T, B, O) with return_sequences, else (B, O).
        """
    def train_step(self, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None, target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None, gru_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, head_dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, adam: AdamConfig, state: AdamState, max_norm: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, bool, float]:
        """
        compute_gradients then apply_gradients with the batch's mean loss. Returns (loss, applied, grad_norm).
        """
    @property
    def param_count(self) -> int:
        ...
def _gemm(A: typing.Any, B: typing.Any, C: numpy.typing.NDArray[typing.Any], ta: bool = False, tb: bool = False, beta: typing.SupportsFloat | typing.SupportsIndex = 0.0, compute_dtype: str = 'float32') -> numpy.typing.NDArray[typing.Any]:
    """
    C = beta C + op(A) op(B) in place (op transposes when ta/tb; compute_dtype 'bfloat16' rounds the operands); returns C. Test hook.
    """
def _gemm_packed(A: typing.Any, B: typing.Any, n0: typing.SupportsInt | typing.SupportsIndex, n1: typing.SupportsInt | typing.SupportsIndex, beta: typing.SupportsFloat | typing.SupportsIndex, C: numpy.typing.NDArray[typing.Any], tb: bool = False, compute_dtype: str = 'float32') -> numpy.typing.NDArray[typing.Any]:
    """
    C[:, n0:n1] = beta C[:, n0:n1] + A op(B)[:, n0:n1] in place via a packed B; returns C. Test hook.
    """
def _packed_panel_width() -> int:
    """
    Column granularity of packed matrices for the active instruction set.
    """
def _round_to_bfloat16(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    """
    x (float32) rounded to bfloat16 values, as the products' operands are. Test hook.
    """
def active_isa() -> str:
    """
    The instruction set in use: the widest available, unless FASTGRU_ISA or set_isa() chose another.
    A FASTGRU_ISA that is unknown or unsupported here raises ValueError at the first call.
    """
def adam_step_float32(config: AdamConfig, state: AdamState, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> None:
    """
    One fused Adam/AdamW update of flat buffers, in place (torch.optim.Adam semantics), on grad * grad_scale (clipping as a factor; grad is not modified): step number state.step + 1, which state then counts.
    """
def adam_step_float64(config: AdamConfig, state: AdamState, params: numpy.typing.NDArray[typing.Any], grad: numpy.typing.NDArray[typing.Any], grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> None:
    """
    One fused Adam/AdamW update of flat buffers, in place (torch.optim.Adam semantics), on grad * grad_scale (clipping as a factor; grad is not modified): step number state.step + 1, which state then counts.
    """
def available_isas() -> list[str]:
    """
    Instruction sets this build has kernels for and this CPU runs, lowest first
    (e.g. ['generic', 'avx2'], with 'avx512' where the CPU has it).
    """
def core_lengths(lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], steps: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.int64] | None:
    """
    fastgru.keras' mask lengths (B,) as the core takes them: None when no sequence is padded; ValueError for -1 (a mask not right-padded), 0 (an all-False row) or more than steps.
    """
def dense_backward_float32(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], grad_weight: numpy.typing.NDArray[typing.Any], grad_bias: numpy.typing.NDArray[typing.Any] | None = None, need_dx: bool = True) -> typing.Any:
    """
    Adds dy^T x into grad_weight and dy's column sums into grad_bias; returns dx = dy weight (or None when need_dx is false).
    """
def dense_backward_float64(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], grad_weight: numpy.typing.NDArray[typing.Any], grad_bias: numpy.typing.NDArray[typing.Any] | None = None, need_dx: bool = True) -> typing.Any:
    """
    Adds dy^T x into grad_weight and dy's column sums into grad_bias; returns dx = dy weight (or None when need_dx is false).
    """
def dense_forward_float32(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> numpy.typing.NDArray[numpy.float32]:
    """
    y (R, out) = x (R, in) weight^T (in, out) + bias (out,).
    """
def dense_forward_float64(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None) -> numpy.typing.NDArray[numpy.float64]:
    """
    y (R, out) = x (R, in) weight^T (in, out) + bias (out,).
    """
def dense_param_layout(in_features: typing.SupportsInt | typing.SupportsIndex, out_features: typing.SupportsInt | typing.SupportsIndex, bias: bool = True) -> list[typing.Any]:
    """
    [(name, offset, shape)] of a Dense layer's flat buffer: weight (out, in), then bias (out,).
    """
def get_num_threads() -> int:
    """
    The number of threads the core uses (see set_num_threads).
    """
def gru_backward_float32(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], workspace: numpy.typing.NDArray[typing.Any], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], grad: numpy.typing.NDArray[typing.Any], dh_n: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, input_grad: bool = True, accumulate: bool = True) -> tuple[typing.Any, ...]:
    """
    (dx, dh0) through the training-mode forward that filled workspace (given the same lengths and dropout); adds the parameter gradients into grad (accumulate=False: writes them, no zero fill needed). input_grad=False: dx is None, its product skipped.
    """
def gru_backward_float64(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], workspace: numpy.typing.NDArray[typing.Any], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], grad: numpy.typing.NDArray[typing.Any], dh_n: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, input_grad: bool = True, accumulate: bool = True) -> tuple[typing.Any, ...]:
    """
    (dx, dh0) through the training-mode forward that filled workspace (given the same lengths and dropout); adds the parameter gradients into grad (accumulate=False: writes them, no zero fill needed). input_grad=False: dx is None, its product skipped.
    """
def gru_backward_kept_float32(config: GruConfig, token: typing.SupportsInt | typing.SupportsIndex, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dh_n: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> tuple[typing.Any, ...]:
    """
    (dx, dh0, grad) through the gru_forward_keeping forward that returned token, given its inputs (x batch-major (B, T, I)); runs the forward again when that workspace is gone (used, or dropped beyond the store's limit).
    """
def gru_backward_kept_float64(config: GruConfig, token: typing.SupportsInt | typing.SupportsIndex, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dh_n: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None) -> tuple[typing.Any, ...]:
    """
    (dx, dh0, grad) through the gru_forward_keeping forward that returned token, given its inputs (x batch-major (B, T, I)); runs the forward again when that workspace is gone (used, or dropped beyond the store's limit).
    """
def gru_forward_float32(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, workspace: numpy.typing.NDArray[typing.Any] | None = None) -> tuple[typing.Any, ...]:
    """
    (y, h_n); with a workspace (gru_workspace_size elements) the forward is training mode and fills it.
    """
def gru_forward_float64(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, dropout: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, workspace: numpy.typing.NDArray[typing.Any] | None = None) -> tuple[typing.Any, ...]:
    """
    (y, h_n); with a workspace (gru_workspace_size elements) the forward is training mode and fills it.
    """
def gru_forward_int8_float32(config: GruConfig, packed: typing.Annotated[numpy.typing.ArrayLike, numpy.int8], scales: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> tuple[typing.Any, ...]:
    """
    Inference forward with int8 weights (as gru_step_int8's) -> (y, h_n): gru_step_int8's steps over the whole sequence.
    """
def gru_forward_int8_float64(config: GruConfig, packed: typing.Annotated[numpy.typing.ArrayLike, numpy.int8], scales: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> tuple[typing.Any, ...]:
    """
    Inference forward with int8 weights (as gru_step_int8's) -> (y, h_n): gru_step_int8's steps over the whole sequence.
    """
def gru_forward_keeping_float32(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> tuple[typing.Any, ...]:
    """
    Training forward -> (y, h_n, token): the workspace stays in the core's store under token (>= 1) for gru_backward_kept.
    """
def gru_forward_keeping_float64(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, lengths: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> tuple[typing.Any, ...]:
    """
    Training forward -> (y, h_n, token): the workspace stays in the core's store under token (>= 1) for gru_backward_kept.
    """
def gru_pack_int8(config: GruConfig, weights: typing.Annotated[numpy.typing.ArrayLike, numpy.int8]) -> numpy.typing.NDArray[numpy.int8]:
    """
    int8 weights (gru_param_count, each at its layout place) packed for gru_step_int8 and gru_forward_int8: panels of 16 rows by 4 inputs, once per quantized GRU.
    """
def gru_param_count(config: GruConfig) -> int:
    ...
def gru_param_layout(config: GruConfig) -> list[typing.Any]:
    """
    [(name, offset, shape)] of the flat parameter buffer, in torch.nn.GRU order.
    """
def gru_step_float32(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple[typing.Any, ...]:
    """
    One inference step of a unidirectional GRU: x (B, I), h (L, B, H) -> (y (B, H), h_new).
    """
def gru_step_float64(config: GruConfig, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple[typing.Any, ...]:
    """
    One inference step of a unidirectional GRU: x (B, I), h (L, B, H) -> (y (B, H), h_new).
    """
def gru_step_int8_float32(config: GruConfig, packed: typing.Annotated[numpy.typing.ArrayLike, numpy.int8], scales: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], h: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple[typing.Any, ...]:
    """
    gru_step with int8 weights (packed by gru_pack_int8) times their row scales (L, 2, 3H): weight_ih's then weight_hh's per layer; params gives the biases.
    """
def gru_step_int8_float64(config: GruConfig, packed: typing.Annotated[numpy.typing.ArrayLike, numpy.int8], scales: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple[typing.Any, ...]:
    """
    gru_step with int8 weights (packed by gru_pack_int8) times their row scales (L, 2, 3H): weight_ih's then weight_hh's per layer; params gives the biases.
    """
def gru_workspace_size(config: GruConfig, steps: typing.SupportsInt | typing.SupportsIndex, batch: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Elements of the training workspace of a forward over (steps, batch).
    """
def kept_workspace_counts() -> tuple[int, int, int]:
    """
    (waiting for their backward, on the free list, backwards so far that ran their forward again): the training workspaces of the core's store (JAX's and TensorFlow's).
    """
def loss_float32(kind: str, logits: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None = None) -> tuple[typing.Any, ...]:
    """
    (loss, dlogits): the mean loss over valid rows and its gradient with respect to logits.
    """
def loss_float64(kind: str, logits: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], target: typing.Any, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool] | None = None) -> tuple[typing.Any, ...]:
    """
    (loss, dlogits): the mean loss over valid rows and its gradient with respect to logits.
    """
def model_param_layout(gru: GruConfig, output_size: typing.SupportsInt | typing.SupportsIndex) -> list[typing.Any]:
    """
    [(name, offset, shape)] of a GRUModel's flat buffer: the GRU's tensors as 'gru.<name>', then the head's as 'head.weight' (O, D*H) and 'head.bias' (O,).
    """
def release_memory() -> None:
    """
    Frees the scratch memory that forward and backward calls keep between calls, the calling
    thread's and the thread pool's (their temporaries, up to the largest call's size, reused so
    that a call does not page-fault fresh memory). The next call allocates what it needs again.
    """
def set_isa(name: str) -> None:
    """
    Uses the kernels of another instruction set, as the FASTGRU_ISA environment variable does.
    name: one of available_isas(), in any case; ValueError if it is unknown or this CPU lacks it.
    """
def set_num_threads(n: typing.Any) -> None:
    """
    Sets the number of threads the core uses (n: an int in 1..65536, else TypeError or ValueError;
    the default is OMP_NUM_THREADS, else the core count). Results are bit-identical for any
    thread count. A pool the system cannot start (no threads or memory left) raises MemoryError
    at the next call that needs it.
    """
def use_openmp_threads(use: bool) -> bool:
    """
    use=True: run parallel regions on the threads of the OpenMP runtime already loaded in the
    process (torch's), so that its spinning idle workers and fastgru's pool do not fight for the
    cores; returns False (and keeps fastgru's own pool) when none is loaded. use=False: fastgru's
    own pool again. Results are the same either way.
    """
def uses_openmp_threads() -> bool:
    """
    Whether parallel regions run on the OpenMP runtime's threads (use_openmp_threads).
    """
def xla_ffi_handlers() -> dict[typing.Any, typing.Any]:
    """
    XLA FFI handlers by target name (PyCapsules for jax.ffi.register_ffi_target): the GRU forward and backward on XLA's buffers, for fastgru.jax.
    """
BUILD_TYPE: str
COMPILER: str
MAX_ELEMENTS: int = 1152921504606846975
MAX_LAYERS: int = 1024
__version__: str
