// The one definition of where each GRU parameter lives in the flat buffer.
#include "fastgru/gru.h"

namespace fastgru {

std::vector<ParamTensor> gru_param_layout(const GruConfig& cfg) {
  std::vector<ParamTensor> layout;
  const size_t H = cfg.hidden_size;
  size_t offset = 0;
  auto add = [&](std::string name, size_t rows, size_t cols) {
    layout.push_back({std::move(name), offset, rows, cols});
    offset += layout.back().size();
  };
  for (size_t layer = 0; layer < cfg.num_layers; ++layer) {
    for (size_t dir = 0; dir < cfg.directions(); ++dir) {
      std::string suffix = "_l" + std::to_string(layer) + (dir ? "_reverse" : "");
      add("weight_ih" + suffix, 3 * H, cfg.layer_input_size(layer));
      add("weight_hh" + suffix, 3 * H, H);
      if (cfg.bias) {
        add("bias_ih" + suffix, 3 * H, 0);
        add("bias_hh" + suffix, 3 * H, 0);
      }
    }
  }
  return layout;
}

size_t gru_direction_param_count(const GruConfig& cfg, size_t layer) {
  const size_t H = cfg.hidden_size;
  return 3 * H * (cfg.layer_input_size(layer) + H) + (cfg.bias ? 6 * H : 0);
}

size_t gru_param_count(const GruConfig& cfg) {  // the layout's size, without building it
  size_t count = 0;
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    count += cfg.directions() * gru_direction_param_count(cfg, layer);
  return count;
}

}  // namespace fastgru
