// A tensor's place in a flat parameter buffer: the unit of every layout (gru_param_layout,
// dense_param_layout, model_param_layout), each defined once in the core.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace fastgru {

struct ParamTensor {
  std::string name;   // torch name, e.g. "weight_hh_l1_reverse", "head.bias"
  size_t offset;      // in elements
  size_t rows, cols;  // cols == 0 for a vector
  size_t size() const { return cols ? rows * cols : rows; }
};

// The offset past a layout's last tensor: the buffer's size.
inline size_t layout_end(const std::vector<ParamTensor>& layout) {
  return layout.empty() ? 0 : layout.back().offset + layout.back().size();
}

}  // namespace fastgru
