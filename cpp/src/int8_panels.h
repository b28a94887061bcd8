// Where gru_pack_int8 puts each weight matrix of fastgru.quantize's int8 weights, in the panels
// that gemv_panels_q8 reads (gemm_kernels.h). The one definition that the packing and the int8
// steps (gru_step.cpp) both read.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastgru/gru.h"

namespace fastgru {
namespace detail {

// One packed matrix (3H, K): gate g's rows at offset + g * gate_stride, each gate's H rows
// padded to whole panels and K to `depth` (both with zeros), so the row u of a gate starts
// its panel u / 16 at + (u / 16) * 16 * depth. After the three gates' panels, at `sums`, the
// rows' weight sums (int32; padding rows 0): gate g's row u at [g * padded_rows + u].
struct Int8Matrix {
  size_t offset;       // bytes into the packed buffer
  size_t depth;        // K rounded up to kQ8Group
  size_t padded_rows;  // H rounded up to kQ8PanelRows
  size_t gate_stride;  // padded_rows * depth
  size_t sums;         // bytes into the packed buffer: offset + 3 * gate_stride
  // The weight sums of gate g's rows from unit u on.
  const int32_t* row_sums(const int8_t* packed, size_t g, size_t u) const {
    return reinterpret_cast<const int32_t*>(packed + sums) + g * padded_rows + u;
  }
};

struct Int8Direction {  // one direction of one layer: weight_ih (3H, in), then weight_hh (3H, H)
  Int8Matrix ih, hh;
};

// The matrices of direction `direction` of layer `layer`, packed in the order of
// gru_param_layout (layer by layer, direction by direction, weight_ih before weight_hh).
Int8Direction int8_direction_panels(const GruConfig& cfg, size_t layer, size_t direction);

}  // namespace detail
}  // namespace fastgru
