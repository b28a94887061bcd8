// The 256-bit FMA throughput probe, compiled with -mavx2 -mfma and nothing else in this file, so no
// AVX2 code can be inlined into (or merged with) the baseline code of bench_gru.cpp.
// Intrinsics only: any standard-library header here could emit AVX2 copies of inline functions
// that the linker might pick for the whole program.
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

// rounds x 12 independent chains x 8 lanes x one FMA (2 FLOPs). Twelve chains cover the FMA
// latency (4-5 cycles) times two FMA pipes; the result is returned so nothing is optimized away.
float fma_chains_avx2(long rounds) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.01f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long r = 0; r < rounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  return _mm256_cvtss_f32(sum);
}
#endif
