#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastgru's compiled core: GRU forward/backward, Dense head, losses, fused Adam, the whole model's "
            "training step, GEMM, threading";
  bind_runtime(m);
  bind_gemm(m);
  bind_gru(m);
  bind_dense(m);
  bind_loss(m);
  bind_optim(m);
  bind_model(m);
}
