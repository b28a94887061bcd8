// The AMX bfloat16 throughput probe (TDPBF16PS), compiled with -mamx-tile -mamx-bf16 and nothing
// else in this file (as peak_avx2.cpp): bench_gru calls it only when fastgru's active instruction
// set is amx, whose check has already asked Linux for the tile state.
#if defined(__AMX_BF16__)
#include <immintrin.h>

#include <cstdint>

namespace {
struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
}  // namespace

// rounds x 4 independent tile products x (16 x 16 outputs x 32 bfloat16 products, 2 FLOPs each).
float tdpbf16_chains_amx(long rounds) {
  TileConfig config{};
  config.palette = 1;
  for (int t = 0; t < 8; ++t) config.colsb[t] = 64, config.rows[t] = 16;
  _tile_loadconfig(&config);
  alignas(64) static uint16_t operand[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) operand[i] = 0x3A83;  // about 1e-3 in bfloat16
  alignas(64) static float out[16 * 16];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  for (long r = 0; r < rounds; ++r) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  float sum = 0;
  _tile_stored(0, out, 64);
  sum += out[0];
  _tile_stored(3, out, 64);
  sum += out[0];
  _tile_release();
  return sum;
}
#endif
