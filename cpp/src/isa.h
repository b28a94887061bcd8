// The table of hot kernels for one instruction set. Each isa_*.cpp builds one table from
// the same sources with its own compiler flags; cpu_dispatch.cpp picks the active one.
#pragma once
#include "adam_kernels.h"
#include "gemm_kernels.h"
#include "gru_cell.h"

namespace fastgru {
namespace detail {

struct IsaKernels {
  const char* name;
  GemmKernels<float> gemm_f32;
  GemmKernels<double> gemm_f64;
  CellKernels<float> cell_f32;
  CellKernels<double> cell_f64;
  AdamKernels<float> adam_f32;
  AdamKernels<double> adam_f64;
};

const IsaKernels* isa_kernels_generic();
#if defined(FASTGRU_X86)
const IsaKernels* isa_kernels_avx2();
const IsaKernels* isa_kernels_avx512();
#endif

const IsaKernels& active_kernels();

template <class T>
const GemmKernels<T>& gemm_kernels();
template <>
inline const GemmKernels<float>& gemm_kernels<float>() { return active_kernels().gemm_f32; }
template <>
inline const GemmKernels<double>& gemm_kernels<double>() { return active_kernels().gemm_f64; }

template <class T>
const CellKernels<T>& cell_kernels();
template <>
inline const CellKernels<float>& cell_kernels<float>() { return active_kernels().cell_f32; }
template <>
inline const CellKernels<double>& cell_kernels<double>() { return active_kernels().cell_f64; }

template <class T>
const AdamKernels<T>& adam_kernels();
template <>
inline const AdamKernels<float>& adam_kernels<float>() { return active_kernels().adam_f32; }
template <>
inline const AdamKernels<double>& adam_kernels<double>() { return active_kernels().adam_f64; }

}  // namespace detail
}  // namespace fastgru
