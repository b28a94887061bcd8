// The 512-bit FMA throughput probe, compiled with -mavx512f and nothing else in this file (as
// peak_avx2.cpp): bench_gru calls it only when the active instruction set is avx512.
#if defined(__AVX512F__)
#include <immintrin.h>

// rounds x 24 independent chains x 16 lanes x one FMA (2 FLOPs): 24 chains cover the FMA
// latency (4 cycles) times two 512-bit FMA pipes with room to spare (32 registers).
float fma_chains_avx512(long rounds) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.01f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long r = 0; r < rounds; ++r) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_cvtss_f32(sum);  // one lane keeps every chain alive (reduce_add trips a GCC 12 warning)
}
#endif
