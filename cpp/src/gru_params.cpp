// The one definition of where each GRU parameter lives in the flat buffer, and of the size
// limits of a GRU's buffers.
#include <algorithm>
#include <stdexcept>

#include "fastgru/checked.h"
#include "fastgru/gru.h"
#include "gru_cell.h"

namespace fastgru {

std::vector<ParamTensor> gru_param_layout(const GruConfig& cfg) {
  if (cfg.num_layers < 1 || cfg.num_layers > kMaxLayers)
    throw std::invalid_argument("num_layers: expected 1.." + std::to_string(kMaxLayers) + ", got " +
                                std::to_string(cfg.num_layers));
  const size_t H = cfg.hidden_size;
  const size_t gate_rows = checked_mul(3, H, "hidden_size: 3 * hidden_size");
  checked_mul(cfg.directions(), H, "hidden_size: directions * hidden_size");
  std::vector<ParamTensor> layout;
  size_t offset = 0;
  // `shape` says which arguments the dimensions come from, for the error message.
  auto add = [&](const std::string& name, size_t rows, size_t cols, const char* shape) {
    const size_t size = cols ? checked_mul(rows, cols, (name + shape).c_str()) : rows;
    layout.push_back({name, offset, rows, cols});
    offset = checked_add(offset, size, "the GRU's parameter count");
  };
  for (size_t layer = 0; layer < cfg.num_layers; ++layer) {
    for (size_t dir = 0; dir < cfg.directions(); ++dir) {
      std::string suffix = "_l" + std::to_string(layer) + (dir ? "_reverse" : "");
      add("weight_ih" + suffix, gate_rows, cfg.layer_input_size(layer),
          layer ? " (3 * hidden_size, directions * hidden_size)" : " (3 * hidden_size, input_size)");
      add("weight_hh" + suffix, gate_rows, H, " (3 * hidden_size, hidden_size)");
      if (cfg.bias) {
        add("bias_ih" + suffix, gate_rows, 0, "");
        add("bias_hh" + suffix, gate_rows, 0, "");
      }
    }
  }
  return layout;
}

size_t gru_direction_param_count(const GruConfig& cfg, size_t layer) {
  const size_t H = cfg.hidden_size;
  const size_t gate_rows = checked_mul(3, H, "hidden_size: 3 * hidden_size");
  const size_t columns = checked_add(cfg.layer_input_size(layer), H, "input features + hidden_size");
  const size_t weights =
      checked_mul(gate_rows, columns, "weight_ih + weight_hh (3 * hidden_size, input features + hidden_size)");
  if (!cfg.bias) return weights;
  return checked_add(weights, checked_mul(2, gate_rows, "bias_ih + bias_hh"), "the GRU's parameter count");
}

// The layout's size, without building it (a stream step asks for it every call), under the
// same limits as the layout.
size_t gru_param_count(const GruConfig& cfg) {
  if (cfg.num_layers < 1 || cfg.num_layers > kMaxLayers)
    throw std::invalid_argument("num_layers: expected 1.." + std::to_string(kMaxLayers) + ", got " +
                                std::to_string(cfg.num_layers));
  checked_mul(cfg.directions(), cfg.hidden_size, "hidden_size: directions * hidden_size");
  size_t count = 0;
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    count = checked_add(count, checked_mul(cfg.directions(), gru_direction_param_count(cfg, layer),
                                           "the GRU's parameter count"),
                        "the GRU's parameter count");
  return count;
}

void gru_check_sizes(const GruConfig& cfg, size_t steps, size_t batch) {
  gru_param_count(cfg);
  const size_t H = cfg.hidden_size, D = cfg.directions();
  // Gate rows padded to whole blocks of units, as the recurrence lays them out.
  const size_t blocks = H / detail::kGateBlock + 1;
  const size_t gate_cols = checked_product({blocks, detail::kGateBlock, detail::kCacheGates},
                                           "hidden_size: padded gate columns");
  const size_t widest_input = std::max({cfg.input_size, D * H, gate_cols});
  checked_product({steps, batch, widest_input}, "steps * batch * features of x, y or the gates");
  checked_product({cfg.num_layers, steps, batch, D * H},
                  "dropout (num_layers - 1, steps, batch, directions * hidden_size)");
  checked_product({cfg.num_layers, D, batch, H},
                  "h0 / h_n (num_layers * directions, batch, hidden_size)");
  checked_product({gate_cols, std::max(cfg.input_size, H)},
                  "blocked weights (3 * hidden_size, input features)");
}

}  // namespace fastgru
