// The bfloat16 dot-product throughput probe (VDPBF16PS), compiled with -mavx512f -mavx512bf16
// and nothing else in this file (as peak_avx2.cpp): bench_gru calls it only on a CPU with
// AVX512_BF16.
#if defined(__AVX512BF16__)
#include <immintrin.h>

// rounds x 24 independent chains x 16 lanes x (two bfloat16 products + their sum into the
// lane: 4 FLOPs).
float dpbf16_chains_avx512bf16(long rounds) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.01f * static_cast<float>(i));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-4f), _mm512_set1_ps(1e-4f));
  for (long r = 0; r < rounds; ++r) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_cvtss_f32(sum);  // one lane keeps every chain alive (reduce_add trips a GCC 12 warning)
}
#endif
