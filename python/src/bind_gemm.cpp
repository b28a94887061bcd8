// Test hooks for the GEMM (tests/test_gemm.py): the public gemm() and gemm_packed() on NumPy
// arrays. C is updated in place (it may be a view with a row stride, to test ldc) and returned.
#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "fastgru/gemm.h"

namespace py = pybind11;

namespace {

// A 2-D matrix as (rows, cols, leading dimension, data).
template <class T>
struct Mat {
  py::array_t<T> arr;
  size_t rows, cols, ld;
  const T* data() const { return arr.data(); }
};

// Converts to T, keeping a row stride when the rows themselves are contiguous.
template <class T>
Mat<T> as_matrix(const py::object& obj, const char* name) {
  auto a = py::array_t<T, py::array::forcecast>::ensure(obj);
  if (!a || a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be a 2-D array");
  auto rows = static_cast<size_t>(a.shape(0)), cols = static_cast<size_t>(a.shape(1));
  bool strided_ok =
      a.strides(1) == static_cast<py::ssize_t>(sizeof(T)) && a.strides(0) >= static_cast<py::ssize_t>(cols * sizeof(T));
  if (!strided_ok) a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  size_t ld = rows > 1 ? static_cast<size_t>(a.strides(0)) / sizeof(T) : cols;
  return {a, rows, cols, ld > 0 ? ld : 1};
}

// C as a writable T matrix with unit column stride, updated in place.
template <class T>
Mat<T> output_matrix(const py::array& c) {
  bool rows_ok = c.size() == 0 || (c.strides(1) == static_cast<py::ssize_t>(sizeof(T)) &&
                                   c.strides(0) >= static_cast<py::ssize_t>(c.shape(1) * sizeof(T)));
  if (c.ndim() != 2 || !c.writeable() || !rows_ok)
    throw std::invalid_argument("C must be a writable 2-D array with contiguous rows");
  auto a = py::reinterpret_borrow<py::array_t<T>>(c);
  auto rows = static_cast<size_t>(a.shape(0)), cols = static_cast<size_t>(a.shape(1));
  size_t ld = rows > 1 ? static_cast<size_t>(a.strides(0)) / sizeof(T) : cols;
  return {a, rows, cols, ld > 0 ? ld : 1};
}

// C = beta C + op(A) op(B).
template <class T>
py::array gemm_t(const py::object& A, const py::object& B, const py::array& C, bool ta, bool tb, double beta,
                 fastgru::ComputeDtype compute) {
  Mat<T> a = as_matrix<T>(A, "A"), b = as_matrix<T>(B, "B"), c = output_matrix<T>(C);
  size_t M = ta ? a.cols : a.rows, K = ta ? a.rows : a.cols;
  size_t Kb = tb ? b.cols : b.rows, N = tb ? b.rows : b.cols;
  if (K != Kb || c.rows != M || c.cols != N)
    throw std::invalid_argument("gemm: shapes of op(A), op(B) and C do not match");
  T* out = c.arr.mutable_data();
  {
    py::gil_scoped_release release;
    fastgru::gemm<T>(ta ? fastgru::Trans::yes : fastgru::Trans::no, tb ? fastgru::Trans::yes : fastgru::Trans::no, M, N,
                     K, a.data(), a.ld, b.data(), b.ld, static_cast<T>(beta), out, c.ld, compute);
  }
  return C;
}

// C[:, n0:n1] = beta C[:, n0:n1] + A op(B)[:, n0:n1], through PackedMatrix and gemm_packed.
template <class T>
py::array gemm_packed_t(const py::object& A, const py::object& B, size_t n0, size_t n1, double beta, const py::array& C,
                        bool tb, fastgru::ComputeDtype compute) {
  Mat<T> a = as_matrix<T>(A, "A"), b = as_matrix<T>(B, "B"), c = output_matrix<T>(C);
  size_t M = a.rows, K = a.cols;
  size_t Kb = tb ? b.cols : b.rows, N = tb ? b.rows : b.cols;
  if (K != Kb || c.rows != M || c.cols != N)
    throw std::invalid_argument("gemm_packed: shapes of A, op(B) and C do not match");
  if (n0 > n1 || n1 > N) throw std::invalid_argument("gemm_packed: need 0 <= n0 <= n1 <= N");
  T* out = c.arr.mutable_data();
  {
    py::gil_scoped_release release;
    fastgru::PackedMatrix<T> packed;
    packed.pack(tb ? fastgru::Trans::yes : fastgru::Trans::no, K, N, b.data(), b.ld, nullptr, compute);
    fastgru::gemm_packed<T>(M, n0, n1, a.data(), a.ld, packed, static_cast<T>(beta), out, c.ld);
  }
  return C;
}

bool is_float32(const py::array& c) { return c.dtype().is(py::dtype::of<float>()); }
bool is_float64(const py::array& c) { return c.dtype().is(py::dtype::of<double>()); }

void check_dtype(const py::array& c) {
  if (!is_float32(c) && !is_float64(c))
    throw std::invalid_argument("C must be float32 or float64 (A and B are converted to it)");
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def(
      "_gemm",
      [](const py::object& A, const py::object& B, const py::array& C, bool ta, bool tb, double beta,
         const std::string& compute_dtype) {
        check_dtype(C);
        const fastgru::ComputeDtype compute = bindings::compute_dtype(compute_dtype);
        return is_float32(C) ? gemm_t<float>(A, B, C, ta, tb, beta, compute)
                             : gemm_t<double>(A, B, C, ta, tb, beta, compute);
      },
      py::arg("A"), py::arg("B"), py::arg("C"), py::arg("ta") = false, py::arg("tb") = false, py::arg("beta") = 0.0,
      py::arg("compute_dtype") = "float32",
      "C = beta C + op(A) op(B) in place (op transposes when ta/tb; compute_dtype 'bfloat16' rounds "
      "the operands); returns C. Test hook.");
  m.def(
      "_gemm_packed",
      [](const py::object& A, const py::object& B, size_t n0, size_t n1, double beta, const py::array& C, bool tb,
         const std::string& compute_dtype) {
        check_dtype(C);
        const fastgru::ComputeDtype compute = bindings::compute_dtype(compute_dtype);
        return is_float32(C) ? gemm_packed_t<float>(A, B, n0, n1, beta, C, tb, compute)
                             : gemm_packed_t<double>(A, B, n0, n1, beta, C, tb, compute);
      },
      py::arg("A"), py::arg("B"), py::arg("n0"), py::arg("n1"), py::arg("beta"), py::arg("C"), py::arg("tb") = false,
      py::arg("compute_dtype") = "float32",
      "C[:, n0:n1] = beta C[:, n0:n1] + A op(B)[:, n0:n1] in place via a packed B; returns C. "
      "Test hook.");
  m.def(
      "_round_to_bfloat16",
      [](bindings::Array<float> x) {
        bindings::Array<float> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        fastgru::round_to_bfloat16(x.data(), static_cast<size_t>(x.size()), out.mutable_data());
        return out;
      },
      py::arg("x"), "x (float32) rounded to bfloat16 values, as the products' operands are. Test hook.");
  m.def("_packed_panel_width", &fastgru::packed_panel_width,
        "Column granularity of packed matrices for the active instruction set.");
}
