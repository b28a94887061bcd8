// The GRU forward and backward as XLA FFI custom calls, for fastgru.jax: JAX calls them from
// inside a compiled program, on XLA's buffers, with no Python in between. (jax.pure_callback,
// the portable alternative, copies every argument into a fresh jax.Array and back: about 0.8 ms
// per call at small sizes, more than the GRU's own work there.)
//
// fastgru_gru_forward   args  params (P,), x (T, B, I), h0 (L*D, B, H), lengths (B,) int32
//                       attrs the GruConfig (input_size, hidden_size, num_layers, bidirectional,
//                             bias, reset_after) and training, all integers
//                       rets  y (T, B, D*H), h_n (L*D, B, H), and in training the int32 token
//                             of the kept workspace (kept_workspaces.h)
// fastgru_gru_backward  args  params, token, x (B, T, I), h0, dy (T, B, D*H), dh_n, lengths:
//                             the forward's inputs and the gradients of its outputs
//                       attrs the GruConfig
//                       rets  dx (T, B, I), dh0 (L*D, B, H), grad (P,)
// Float buffers are all float32 or all float64; x is time-major for the forward and batch-major
// (B, T, I) for the backward (which reads it only to run the forward again). lengths follow
// fastgru.keras' convention (mask_lengths.h): T for an unpadded sequence, 0 and -1 refused.
#include <pybind11/stl.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "fastgru/gru.h"
#include "kept_workspaces.h"
#include "mask_lengths.h"
#include "third_party/xla/ffi/api/c_api.h"

namespace {

namespace py = pybind11;
using fastgru::GruConfig;

XLA_FFI_Error* make_error(const XLA_FFI_Api* api, XLA_FFI_Error_Code code, const char* message) {
  XLA_FFI_Error_Create_Args args{};
  args.struct_size = XLA_FFI_Error_Create_Args_STRUCT_SIZE;
  args.message = message;  // XLA copies it
  args.errc = code;
  return api->XLA_FFI_Error_Create(&args);
}

// At registration XLA calls a handler with a metadata extension instead of buffers: it asks
// which FFI version the handler speaks. These read only structs that every version has (their
// sizes checked), so they speak the older of their header's version and the runtime's.
bool answered_metadata(XLA_FFI_CallFrame* frame) {
  XLA_FFI_Extension_Base* ext = frame->extension_start;
  if (ext == nullptr || ext->type != XLA_FFI_Extension_Metadata) return false;
  XLA_FFI_Metadata* metadata = reinterpret_cast<XLA_FFI_Metadata_Extension*>(ext)->metadata;
  metadata->api_version.struct_size = XLA_FFI_Api_Version_STRUCT_SIZE;
  metadata->api_version.extension_start = nullptr;
  metadata->api_version.major_version = XLA_FFI_API_MAJOR;
  metadata->api_version.minor_version = std::min(XLA_FFI_API_MINOR, frame->api->api_version.minor_version);
  metadata->traits = 0;
  return true;
}

template <class Real>
constexpr XLA_FFI_DataType kDataType = sizeof(Real) == 4 ? XLA_FFI_DataType_F32 : XLA_FFI_DataType_F64;

// A buffer's data after checking its dtype and dims; a mismatch is a bug in fastgru.jax's call,
// reported as std::invalid_argument.
template <class Elem>
Elem* buffer_data(const XLA_FFI_Buffer* b, XLA_FFI_DataType dtype, std::initializer_list<int64_t> dims,
                  const char* name) {
  bool ok = b->dtype == dtype && b->rank == static_cast<int64_t>(dims.size());
  int64_t i = 0;
  for (int64_t d : dims) ok = ok && b->dims[i++] == d;
  if (!ok) throw std::invalid_argument(std::string(name) + ": wrong dtype or shape in fastgru's XLA call");
  return static_cast<Elem*>(b->data);
}

// One call's buffers and integer attributes.
class Call {
 public:
  explicit Call(const XLA_FFI_CallFrame* frame) : frame_(frame) {
    if (frame->args.struct_size < XLA_FFI_Args_STRUCT_SIZE || frame->rets.struct_size < XLA_FFI_Rets_STRUCT_SIZE ||
        frame->attrs.struct_size < XLA_FFI_Attrs_STRUCT_SIZE)
      throw std::invalid_argument("XLA's call frame is older than fastgru's FFI handlers expect");
  }

  const XLA_FFI_Buffer* arg(int64_t i) const {
    if (i >= frame_->args.size || frame_->args.types[i] != XLA_FFI_ArgType_BUFFER)
      throw std::invalid_argument("fastgru's XLA call: argument " + std::to_string(i) + " missing");
    return static_cast<const XLA_FFI_Buffer*>(frame_->args.args[i]);
  }

  const XLA_FFI_Buffer* ret(int64_t i) const {
    if (i >= frame_->rets.size || frame_->rets.types[i] != XLA_FFI_RetType_BUFFER)
      throw std::invalid_argument("fastgru's XLA call: result " + std::to_string(i) + " missing");
    return static_cast<const XLA_FFI_Buffer*>(frame_->rets.rets[i]);
  }

  int64_t num_rets() const { return frame_->rets.size; }

  int64_t int_attr(std::string_view name) const {
    const XLA_FFI_Attrs& attrs = frame_->attrs;
    for (int64_t i = 0; i < attrs.size; ++i) {
      if (std::string_view(attrs.names[i]->ptr, attrs.names[i]->len) != name) continue;
      if (attrs.types[i] != XLA_FFI_AttrType_SCALAR) break;
      const auto* scalar = static_cast<const XLA_FFI_Scalar*>(attrs.attrs[i]);
      switch (scalar->dtype) {
        case XLA_FFI_DataType_PRED:
        case XLA_FFI_DataType_U8:
          return *static_cast<const uint8_t*>(scalar->value);
        case XLA_FFI_DataType_S32:
          return *static_cast<const int32_t*>(scalar->value);
        case XLA_FFI_DataType_S64:
          return *static_cast<const int64_t*>(scalar->value);
        default:
          break;
      }
      break;
    }
    throw std::invalid_argument("fastgru's XLA call: attribute " + std::string(name) + " missing or not an integer");
  }

  GruConfig config() const {
    GruConfig cfg;
    cfg.input_size = static_cast<size_t>(int_attr("input_size"));
    cfg.hidden_size = static_cast<size_t>(int_attr("hidden_size"));
    cfg.num_layers = static_cast<size_t>(int_attr("num_layers"));
    cfg.bidirectional = int_attr("bidirectional") != 0;
    cfg.bias = int_attr("bias") != 0;
    cfg.reset_after = int_attr("reset_after") != 0;
    (void)fastgru::gru_param_count(cfg);  // throws std::invalid_argument for a config without a layout
    return cfg;
  }

 private:
  const XLA_FFI_CallFrame* frame_;
};

// lengths (B,) int32 as the core takes them (mask_lengths.h): nullptr when no sequence is padded.
class Lengths {
 public:
  Lengths(const XLA_FFI_Buffer* b, int64_t batch, int64_t steps)
      : values_(fastgru_bindings::core_lengths(buffer_data<const int32_t>(b, XLA_FFI_DataType_S32, {batch}, "lengths"),
                                               batch, steps)) {}
  const int64_t* data() const { return values_.empty() ? nullptr : values_.data(); }

 private:
  std::vector<int64_t> values_;
};

// The extents of a call: steps and batch from a time-major sequence (T, B, *) (x, dy), checked;
// the rest from the config.
struct Extents {
  Extents(const GruConfig& cfg, const XLA_FFI_Buffer* x) {
    if (x->rank != 3) throw std::invalid_argument("expected a time-major (T, B, *) sequence in fastgru's XLA call");
    steps = x->dims[0];
    batch = x->dims[1];
    fastgru::gru_check_sizes(cfg, steps, batch);
    LD = cfg.num_layers * cfg.directions();
    H = cfg.hidden_size;
    I = cfg.input_size;
    DH = cfg.directions() * H;
    P = fastgru::gru_param_count(cfg);
  }
  int64_t steps, batch, LD, H, I, DH, P;
};

template <class Real>
void forward(const Call& call) {
  const GruConfig cfg = call.config();
  const bool training = call.int_attr("training") != 0;
  if (call.num_rets() != (training ? 3 : 2)) throw std::invalid_argument("fastgru's XLA call: wrong result count");
  const Extents e(cfg, call.arg(1));
  constexpr XLA_FFI_DataType dt = kDataType<Real>;
  const Lengths lengths(call.arg(3), e.batch, e.steps);
  const Real* params = buffer_data<const Real>(call.arg(0), dt, {e.P}, "params");
  const Real* x = buffer_data<const Real>(call.arg(1), dt, {e.steps, e.batch, e.I}, "x");
  const Real* h0 = buffer_data<const Real>(call.arg(2), dt, {e.LD, e.batch, e.H}, "h0");
  Real* y = buffer_data<Real>(call.ret(0), dt, {e.steps, e.batch, e.DH}, "y");
  Real* h_n = buffer_data<Real>(call.ret(1), dt, {e.LD, e.batch, e.H}, "h_n");
  if (training)
    *buffer_data<int32_t>(call.ret(2), XLA_FFI_DataType_S32, {}, "token") =
        fastgru_bindings::gru_forward_keeping<Real>(cfg, params, e.steps, e.batch, x, h0, lengths.data(), y, h_n);
  else
    fastgru::gru_forward<Real>(cfg, params, e.steps, e.batch, x, h0, lengths.data(), nullptr, y, h_n, nullptr);
}

template <class Real>
void backward(const Call& call) {
  const GruConfig cfg = call.config();
  const Extents e(cfg, call.arg(4));
  constexpr XLA_FFI_DataType dt = kDataType<Real>;
  const Lengths lengths(call.arg(6), e.batch, e.steps);
  fastgru_bindings::gru_backward_kept<Real>(
      cfg, *buffer_data<const int32_t>(call.arg(1), XLA_FFI_DataType_S32, {}, "token"),
      buffer_data<const Real>(call.arg(0), dt, {e.P}, "params"), e.steps, e.batch,
      buffer_data<const Real>(call.arg(2), dt, {e.batch, e.steps, e.I}, "x"),
      buffer_data<const Real>(call.arg(3), dt, {e.LD, e.batch, e.H}, "h0"), lengths.data(),
      buffer_data<const Real>(call.arg(4), dt, {e.steps, e.batch, e.DH}, "dy"),
      buffer_data<const Real>(call.arg(5), dt, {e.LD, e.batch, e.H}, "dh_n"),
      buffer_data<Real>(call.ret(0), dt, {e.steps, e.batch, e.I}, "dx"),
      buffer_data<Real>(call.ret(1), dt, {e.LD, e.batch, e.H}, "dh0"),
      buffer_data<Real>(call.ret(2), dt, {e.P}, "grad"));
}

// The handler XLA calls: float32 or float64 by the dtype of argument dtype_arg; C++ exceptions
// become XLA errors (the message reaches the JAX caller).
template <void (*F32)(const Call&), void (*F64)(const Call&), int dtype_arg>
XLA_FFI_Error* handler(XLA_FFI_CallFrame* frame) {
  if (answered_metadata(frame)) return nullptr;
  if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE) return nullptr;  // nothing to prepare
  try {
    const Call call(frame);
    const XLA_FFI_DataType dtype = call.arg(dtype_arg)->dtype;
    if (dtype == XLA_FFI_DataType_F32)
      F32(call);
    else if (dtype == XLA_FFI_DataType_F64)
      F64(call);
    else
      throw std::invalid_argument("fastgru's XLA call: expected float32 or float64 buffers");
    return nullptr;
  } catch (const std::invalid_argument& e) {
    return make_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    return make_error(frame->api, XLA_FFI_Error_Code_RESOURCE_EXHAUSTED, "fastgru: out of memory");
  } catch (const std::exception& e) {
    return make_error(frame->api, XLA_FFI_Error_Code_INTERNAL, e.what());
  }
}

py::capsule capsule(XLA_FFI_Handler* fn) { return py::capsule(reinterpret_cast<void*>(fn)); }

}  // namespace

void bind_xla_ffi(py::module_& m) {
  m.def(
      "core_lengths",
      [](const bindings::Int64Array& lengths, size_t steps) -> std::optional<bindings::Int64Array> {
        if (lengths.ndim() != 1)
          throw py::value_error("lengths: expected shape (B,), got " + bindings::shape_str(lengths));
        std::vector<int64_t> v = fastgru_bindings::core_lengths(lengths.data(), lengths.shape(0), steps);
        if (v.empty()) return std::nullopt;
        return bindings::Int64Array(static_cast<py::ssize_t>(v.size()), v.data());
      },
      py::arg("lengths"), py::arg("steps"),
      "fastgru.keras' mask lengths (B,) as the core takes them: None when no sequence is padded; "
      "ValueError for -1 (a mask not right-padded), 0 (an all-False row) or more than steps.");
  m.def(
      "kept_workspace_counts",
      [] {
        return py::make_tuple(fastgru_bindings::kept_workspace_count(), fastgru_bindings::free_workspace_count(),
                              fastgru_bindings::forwards_run_again());
      },
      "(waiting for their backward, on the free list, backwards so far that ran their forward again): the "
      "training workspaces of the core's store (JAX's and TensorFlow's).");
  m.def(
      "xla_ffi_handlers",
      [] {
        py::dict handlers;
        handlers["fastgru_gru_forward"] = capsule(&handler<forward<float>, forward<double>, 1>);
        handlers["fastgru_gru_backward"] = capsule(&handler<backward<float>, backward<double>, 4>);
        return handlers;
      },
      "XLA FFI handlers by target name (PyCapsules for jax.ffi.register_ffi_target): the GRU forward and "
      "backward on XLA's buffers, for fastgru.jax.");
}
