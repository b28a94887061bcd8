// The one definition of where each GRU parameter lives in the flat buffer, and of the size
// limits of a GRU's buffers.
#include <algorithm>
#include <stdexcept>

#include "fastgru/checked.h"
#include "fastgru/gru.h"
#include "gru_cell.h"

namespace fastgru {

namespace {

void check_layers(const GruConfig& cfg) {
  if (cfg.num_layers < 1 || cfg.num_layers > kMaxLayers)
    throw std::invalid_argument("num_layers: expected 1.." + std::to_string(kMaxLayers) + ", got " +
                                std::to_string(cfg.num_layers));
  checked_mul(cfg.directions(), cfg.hidden_size, "hidden_size: directions * hidden_size");
}

}  // namespace

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
  check_layers(cfg);
  size_t count = 0;
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    count = checked_add(
        count, checked_mul(cfg.directions(), gru_direction_param_count(cfg, layer), "the GRU's parameter count"),
        "the GRU's parameter count");
  return count;
}

// The one definition of where each tensor sits: the directions in order (layer by layer,
// forward first), each weight_ih (3H, in), weight_hh (3H, H), then bias_ih, bias_hh (3H).
DirectionLayout gru_direction_layout(const GruConfig& cfg, size_t layer, size_t direction) {
  check_layers(cfg);
  if (layer >= cfg.num_layers || direction >= cfg.directions())
    throw std::out_of_range("gru_direction_layout: no layer " + std::to_string(layer) + " direction " +
                            std::to_string(direction));
  size_t offset = 0;
  for (size_t l = 0; l <= layer; ++l) {
    const size_t count = gru_direction_param_count(cfg, l);
    const size_t before = l < layer ? cfg.directions() : direction;  // directions wholly before this one
    offset = checked_add(offset, checked_mul(before, count, "the GRU's parameter count"), "the GRU's parameter count");
  }
  const size_t gate_rows = 3 * cfg.hidden_size, biases = cfg.bias ? gate_rows : 0;
  DirectionLayout d;
  d.end = checked_add(offset, gru_direction_param_count(cfg, layer), "the GRU's parameter count");
  d.weight_ih = offset;  // each below end, so none overflows
  d.weight_hh = d.weight_ih + gate_rows * cfg.layer_input_size(layer);
  d.bias_ih = d.weight_hh + gate_rows * cfg.hidden_size;
  d.bias_hh = d.bias_ih + biases;
  return d;
}

std::vector<ParamTensor> gru_param_layout(const GruConfig& cfg) {
  check_layers(cfg);
  const size_t gate_rows = checked_mul(3, cfg.hidden_size, "hidden_size: 3 * hidden_size");
  std::vector<ParamTensor> layout;
  for (size_t layer = 0; layer < cfg.num_layers; ++layer) {
    for (size_t dir = 0; dir < cfg.directions(); ++dir) {
      const std::string suffix = "_l" + std::to_string(layer) + (dir ? "_reverse" : "");
      // A weight too large for any buffer is named (which argument it comes from) before the
      // offsets are formed; a sum too large is the parameter count's.
      checked_mul(gate_rows, cfg.layer_input_size(layer),
                  ("weight_ih" + suffix +
                   (layer ? " (3 * hidden_size, directions * hidden_size)" : " (3 * hidden_size, input_size)"))
                      .c_str());
      checked_mul(gate_rows, cfg.hidden_size, ("weight_hh" + suffix + " (3 * hidden_size, hidden_size)").c_str());
      const DirectionLayout d = gru_direction_layout(cfg, layer, dir);
      layout.push_back({"weight_ih" + suffix, d.weight_ih, gate_rows, cfg.layer_input_size(layer)});
      layout.push_back({"weight_hh" + suffix, d.weight_hh, gate_rows, cfg.hidden_size});
      if (cfg.bias) {
        layout.push_back({"bias_ih" + suffix, d.bias_ih, gate_rows, 0});
        layout.push_back({"bias_hh" + suffix, d.bias_hh, gate_rows, 0});
      }
    }
  }
  return layout;
}

void gru_check_sizes(const GruConfig& cfg, size_t steps, size_t batch) {
  gru_param_count(cfg);
  const size_t H = cfg.hidden_size, D = cfg.directions();
  // Gate rows padded to whole blocks of units, as the recurrence lays them out.
  const size_t blocks = H / detail::kGateBlock + 1;
  const size_t gate_cols =
      checked_product({blocks, detail::kGateBlock, detail::kCacheGates}, "hidden_size: padded gate columns");
  const size_t widest_input = std::max({cfg.input_size, D * H, gate_cols});
  checked_product({steps, batch, widest_input}, "steps * batch * features of x, y or the gates");
  checked_product({cfg.num_layers, steps, batch, D * H},
                  "dropout (num_layers - 1, steps, batch, directions * hidden_size)");
  checked_product({cfg.num_layers, D, batch, H}, "h0 / h_n (num_layers * directions, batch, hidden_size)");
  checked_product({gate_cols, std::max(cfg.input_size, H)}, "blocked weights (3 * hidden_size, input features)");
}

}  // namespace fastgru
