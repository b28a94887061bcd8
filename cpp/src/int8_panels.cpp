// Packing fastgru.quantize's int8 weights once into the panels the int8 kernels read front to
// back (gemm_kernels.h: 64 bytes = four inputs of 16 rows), so no step ever sums across lanes,
// with each row's weight sum for the kernels that multiply offset activations (VPDPBUSD).
#include "int8_panels.h"

#include <algorithm>
#include <cstring>

#include "fastgru/checked.h"
#include "gemm_kernels.h"

namespace fastgru {
namespace detail {
namespace {

size_t round_up(size_t n, size_t multiple) {
  return checked_mul((n + multiple - 1) / multiple, multiple, "int8 panels");
}

// The matrix (3H, K) at `offset`; the next one starts at offset + matrix_bytes.
Int8Matrix int8_matrix(const GruConfig& cfg, size_t K, size_t offset) {
  const size_t depth = round_up(K, kQ8Group), rows = round_up(cfg.hidden_size, kQ8PanelRows);
  const size_t gate_stride = checked_mul(rows, depth, "int8 panels");
  return {offset, depth, rows, gate_stride,
          checked_add(offset, checked_mul(3, gate_stride, "int8 panels"), "int8 panels")};
}

// The panels and the row sums: a multiple of 4 bytes, so every matrix's sums are int32-aligned.
size_t matrix_bytes(const Int8Matrix& m) {
  return checked_add(m.sums - m.offset, checked_mul(3 * sizeof(int32_t), m.padded_rows, "int8 panels"), "int8 panels");
}

// Where direction `direction` of layer `layer` starts: the bytes of every direction before it.
// (num_layers, 0) gives the end of the buffer.
size_t direction_offset(const GruConfig& cfg, size_t layer, size_t direction) {
  size_t offset = 0;
  for (size_t l = 0; l <= layer && l < cfg.num_layers; ++l)
    for (size_t d = 0; d < (l < layer ? cfg.directions() : direction); ++d) {
      const size_t ih = matrix_bytes(int8_matrix(cfg, cfg.layer_input_size(l), 0));
      const size_t hh = matrix_bytes(int8_matrix(cfg, cfg.hidden_size, 0));
      offset = checked_add(offset, checked_add(ih, hh, "int8 panels"), "int8 panels");
    }
  return offset;
}

// The rows (3H, K) of w into the panels of m, and their sums.
void pack_matrix(size_t H, size_t K, const int8_t* w, const Int8Matrix& m, int8_t* packed) {
  int8_t* out = packed + m.offset;
  std::fill_n(out, matrix_bytes(m), int8_t(0));
  for (size_t g = 0; g < 3; ++g)
    for (size_t u = 0; u < H; ++u) {
      int8_t* panel = out + g * m.gate_stride + u / kQ8PanelRows * kQ8PanelRows * m.depth;
      const int8_t* row = w + (g * H + u) * K;
      uint32_t sum = 0;  // two's complement: the int32 sum, wrapping (never UB) for any K
      for (size_t k = 0; k < K; ++k) {
        panel[k / kQ8Group * kQ8PanelRows * kQ8Group + u % kQ8PanelRows * kQ8Group + k % kQ8Group] = row[k];
        sum += static_cast<uint32_t>(row[k]);
      }
      std::memcpy(packed + m.sums + (g * m.padded_rows + u) * sizeof sum, &sum, sizeof sum);
    }
}

}  // namespace

Int8Direction int8_direction_panels(const GruConfig& cfg, size_t layer, size_t direction) {
  const Int8Matrix ih = int8_matrix(cfg, cfg.layer_input_size(layer), direction_offset(cfg, layer, direction));
  return {ih, int8_matrix(cfg, cfg.hidden_size, ih.offset + matrix_bytes(ih))};
}
}  // namespace detail

// gru_param_count refuses what the layout refuses, without building it: the step bindings check a
// packed buffer's size at every step.
size_t gru_int8_packed_size(const GruConfig& cfg) {
  gru_param_count(cfg);
  return detail::direction_offset(cfg, cfg.num_layers, 0);
}

void gru_pack_int8(const GruConfig& cfg, const int8_t* weights, int8_t* packed) {
  gru_param_count(cfg);
  for (size_t layer = 0; layer < cfg.num_layers; ++layer)
    for (size_t d = 0; d < cfg.directions(); ++d) {
      const DirectionLayout at = gru_direction_layout(cfg, layer, d);
      const detail::Int8Direction panels = detail::int8_direction_panels(cfg, layer, d);
      detail::pack_matrix(cfg.hidden_size, cfg.layer_input_size(layer), weights + at.weight_ih, panels.ih, packed);
      detail::pack_matrix(cfg.hidden_size, cfg.hidden_size, weights + at.weight_hh, panels.hh, packed);
    }
}

}  // namespace fastgru
