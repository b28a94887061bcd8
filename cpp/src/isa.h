// The table of hot kernels for one instruction set. isa_kernels.inc builds one table per
// variant declared in cpp/CMakeLists.txt (fastgru_add_isa_variant), each compiled with that
// variant's flags; cpu_dispatch.cpp picks the active one.
#pragma once
#include "adam_kernels.h"
#include "bfloat16_kernels.h"
#include "gemm_kernels.h"
#include "gru_cell.h"

namespace fastgru {
namespace detail {

template <class T>
struct TypedKernels {
  GemmKernels<T> gemm;
  CellKernels<T> cell;
  AdamKernels<T> adam;
};

struct IsaKernels {
  const char* name;
  TypedKernels<float> f32;
  TypedKernels<double> f64;
  Bfloat16Kernels bf16;
};

const IsaKernels& active_kernels();

// The active instruction set's kernels for element type T.
template <class T>
const TypedKernels<T>& kernels();
template <>
inline const TypedKernels<float>& kernels<float>() {
  return active_kernels().f32;
}
template <>
inline const TypedKernels<double>& kernels<double>() {
  return active_kernels().f64;
}

}  // namespace detail
}  // namespace fastgru
