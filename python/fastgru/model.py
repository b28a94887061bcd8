"""fastgru.GRUModel: GRU -> optional dropout -> Dense head, all parameters in one flat buffer.

The GRU's parameters come first, then the head's weight and bias, each a view into `params`
(and `grad`), so one fused Adam step updates the whole model. Names follow PyTorch modules
named `gru` and `head`: `gru.weight_ih_l0`, ..., `head.weight`, `head.bias`.

The head sees either every time step of the top layer (`return_sequences=True`: outputs
(B, T, O)) or each sequence's last valid state (outputs (B, O)): h_n of the top layer, and for a
bidirectional GRU the top layer's forward and reverse h_n concatenated (the reverse direction's
final state is the one after step 0), as `torch.cat([h_n[-2], h_n[-1]], 1)`.
"""

import numpy as np

from ._checks import FLOAT_DTYPES, as_float_array, check_backend, check_positive_int, to_dtype_name
from ._flat import FlatParameters
from .gru import GRU
from .layers import Dense
from .reference import heads as reference
from .streaming import ModelStream


class GRUModel(FlatParameters):
    """out = model(x, lengths=None); model.backward(dout); opt = fastgru.Adam(model)

    x (B, T, F) batch-first (or (T, B, F) with time_major=True); out (B, T, O) with
    return_sequences else (B, O). `dropout` is applied between GRU layers (as torch.nn.GRU's) and
    to the head's input, in training mode only."""

    def __init__(self, input_size, hidden_size, output_size, *, num_layers=1, bidirectional=False,
                 reset_after=True, bias=True, return_sequences=True, dropout=0.0, dtype="float32",
                 backend="cpp", seed=None):
        output_size = check_positive_int(output_size, "output_size")
        self.backend = check_backend(backend)
        self.return_sequences = bool(return_sequences)
        self.dtype = to_dtype_name(dtype)
        self.seed = seed
        gru_seed, head_seed, dropout_seed = np.random.SeedSequence(seed).spawn(3)
        gru_size = GRU.param_count(input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)
        features = (2 if bidirectional else 1) * hidden_size
        size = gru_size + Dense.param_count(features, output_size, bias=bias)
        super().__init__(size, FLOAT_DTYPES[self.dtype])
        self.gru = GRU(input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional,
                       dropout=dropout, reset_after=reset_after, dtype=self.dtype, backend=backend,
                       seed=gru_seed, buffers=(self._params[:gru_size], self._grad[:gru_size]))
        self.head = Dense(features, output_size, bias=bias, dtype=self.dtype, backend=backend, seed=head_seed,
                          buffers=(self._params[gru_size:], self._grad[gru_size:]))
        # The GRU's tensors, then the head's, named as attributes `gru` and `head` of a torch module.
        self._layout = ([(f"gru.{name}", offset, shape) for name, offset, shape in self.gru._layout]
                        + [(f"head.{name}", gru_size + offset, shape) for name, offset, shape in self.head._layout])
        self.dropout = self.gru.dropout
        self._rng = np.random.default_rng(dropout_seed)

    @property
    def config(self):
        """The constructor's arguments (JSON-serializable): GRUModel(**model.config) rebuilds it."""
        g = self.gru
        return {"input_size": g.input_size, "hidden_size": g.hidden_size, "output_size": self.head.out_features,
                "num_layers": g.num_layers, "bidirectional": g.bidirectional, "reset_after": g.reset_after,
                "bias": g.bias, "return_sequences": self.return_sequences, "dropout": g.dropout,
                "dtype": self.dtype, "backend": self.backend,
                "seed": self.seed if isinstance(self.seed, (int, type(None))) else None}

    # -- parameters (params, grad, state_dict, ...: FlatParameters) --------------------------------
    def clip_grad_norm(self, max_norm):
        """Scales grad in place so its global L2 norm is at most max_norm (torch's
        clip_grad_norm_); returns the norm before clipping."""
        return reference.clip_grad_norm(self._grad, max_norm)

    def train(self, mode=True):
        self.gru.train(mode)
        self.head.train(mode)
        return super().train(mode)

    # -- computation ------------------------------------------------------------------------
    def __call__(self, x, lengths=None, *, time_major=False):
        return self.forward(x, lengths, time_major=time_major)

    def forward(self, x, lengths=None, *, time_major=False):
        """x (B, T, F) (or (T, B, F) when time_major), lengths (B,) ints in 1..T or None.
        Returns the head's outputs: (B, T, O) (or (T, B, O)) with return_sequences, else (B, O).
        Padded steps of (B, T, O) outputs hold the head's value for a zero GRU output."""
        x = as_float_array(x, "x", FLOAT_DTYPES[self.dtype], (None, None, self.gru.input_size),
                           f"{'(T, B, F)' if time_major else '(B, T, F)'} with F = {self.gru.input_size}")
        if not time_major:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        y, h_n = self.gru(x, lengths=lengths)                       # time-major (T, B, D*H)
        if self.return_sequences:
            features = y
        else:
            D, L = self.gru.num_directions, self.gru.num_layers
            features = np.concatenate(list(h_n[(L - 1) * D:]), axis=1) if D == 2 else h_n[L - 1]
        mask = None
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = ((self._rng.random(features.shape) < keep) / keep).astype(self.dtype)
            features = features * mask
        out = self.head(features)
        if self.training:
            self._cache = (y.shape, h_n.shape, mask)
        if self.return_sequences and not time_major:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        return out

    def backward(self, dout, *, time_major=False):
        """Gradients through the last training-mode forward, added into grad. dout has the shape
        of that forward's output (in the same layout)."""
        if self._cache is None:
            raise RuntimeError("backward: no training-mode forward to differentiate "
                               "(call forward in training mode first)")
        y_shape, h_shape, mask = self._cache
        dout = np.asarray(dout)
        if self.return_sequences and not time_major:
            dout = dout.transpose(1, 0, 2)
        dfeatures = self.head.backward(dout)
        if mask is not None:
            dfeatures = dfeatures * mask
        if self.return_sequences:
            self.gru.backward(dfeatures)
            return
        D, L, H = self.gru.num_directions, self.gru.num_layers, self.gru.hidden_size
        dh_n = np.zeros(h_shape, self.dtype)
        for d in range(D):
            dh_n[(L - 1) * D + d] = dfeatures[:, d * H:(d + 1) * H]
        self.gru.backward(np.zeros(y_shape, self.dtype), dh_n)

    def stream(self, n_streams=1):
        """Streaming inference, one time step at a time (fastgru.streaming): stream.step(x_t)
        with x_t (n_streams, F) (or (F,)) returns the output for the sequences seen so far;
        stream.reset(i=None) starts over. Unidirectional models only."""
        return ModelStream(self, n_streams)

    def save(self, path):
        """Writes the configuration and all weights to one safetensors file, atomically."""
        from .io import save_model
        save_model(path, self)

    def __reduce__(self):
        # The GRU's compiled configuration does not pickle; the config and weights suffice.
        return _restore, (self.config, {k: v.copy() for k, v in self.state_dict().items()}, self.training)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"GRUModel({args})"


def _restore(config, state, training):
    model = GRUModel(**config)
    model.load_state_dict(state)
    return model.train(training)

