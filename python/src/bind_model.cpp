// fastgru::Model (cpp/include/fastgru/model.h) over NumPy arrays: the whole training step of
// GRUModel in one call. python/fastgru/model.py checks the user's arguments; the checks here
// keep the core's buffers safe whatever calls it.
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "fastgru/model.h"
#include "interrupt.h"

namespace py = pybind11;
using bindings::Array;
using bindings::BoolArray;
using bindings::expect_shape;
using bindings::Int64Array;
using bindings::writable;

namespace {

// The arrays of one batch, checked against the model's configuration and kept alive while the
// core reads them.
template <class T>
struct CheckedBatch {
  Array<T> x;
  std::optional<Int64Array> lengths;
  std::optional<Array<T>> target, gru_dropout, head_dropout;
  std::optional<Int64Array> labels;
  std::optional<BoolArray> mask;
  fastgru::Batch<T> batch;
};

template <class T>
void check_x(const fastgru::ModelConfig& cfg, const Array<T>& x, const std::optional<Int64Array>& lengths) {
  expect_shape(x, {-1, -1, static_cast<py::ssize_t>(cfg.gru.input_size)}, "x");
  if (x.shape(0) < 1 || x.shape(1) < 1)
    throw py::value_error("x: expected shape (T, B, I) with T >= 1 and B >= 1, got " + bindings::shape_str(x));
  if (lengths) bindings::check_lengths(*lengths, x.shape(1), x.shape(0));
}

template <class T>
CheckedBatch<T> check_batch(const fastgru::ModelConfig& cfg, Array<T> x, std::optional<Int64Array> lengths,
                            const py::object& target, std::optional<BoolArray> mask,
                            std::optional<Array<T>> gru_dropout, std::optional<Array<T>> head_dropout) {
  check_x(cfg, x, lengths);
  const py::ssize_t steps = x.shape(0), batch = x.shape(1), F = cfg.features();
  const py::ssize_t O = cfg.output_size;
  const py::ssize_t rows = cfg.return_sequences ? steps * batch : batch;
  const std::string rows_text = cfg.return_sequences ? "(T, B" : "(B";
  CheckedBatch<T> c{x, lengths, std::nullopt, gru_dropout, head_dropout, std::nullopt, mask, {}};
  if (cfg.loss == fastgru::LossKind::cross_entropy) {
    c.labels.emplace(Int64Array::ensure(target));
    if (!*c.labels || c.labels->size() != rows)
      throw py::value_error("target: expected integer labels of shape " + rows_text + ") for cross_entropy");
    const int64_t* l = c.labels->data();
    const bool* m = mask ? mask->data() : nullptr;
    if (mask && mask->size() != rows) throw py::value_error("mask: expected shape " + rows_text + ")");
    for (py::ssize_t r = 0; r < rows; ++r)
      if ((!m || m[r]) && (l[r] < 0 || l[r] >= O))
        throw py::value_error("target: labels must be in [0, " + std::to_string(O) + "), got " + std::to_string(l[r]));
  } else {
    c.target.emplace(Array<T>::ensure(target));
    if (!*c.target || c.target->size() != rows * O || c.target->shape(c.target->ndim() - 1) != O)
      throw py::value_error("target: expected float targets of shape " + rows_text +
                            ", O) with O = " + std::to_string(O));
  }
  if (mask && mask->size() != rows) throw py::value_error("mask: expected shape " + rows_text + ")");
  if (gru_dropout)
    expect_shape(*gru_dropout, {static_cast<py::ssize_t>(cfg.gru.num_layers) - 1, steps, batch, F}, "gru_dropout");
  if (head_dropout && head_dropout->size() != rows * F)
    throw py::value_error("head_dropout: expected shape " + rows_text + ", D*H) with D*H = " + std::to_string(F));
  fastgru::Batch<T>& b = c.batch;
  b.steps = steps;
  b.batch = batch;
  b.x = c.x.data();
  b.lengths = lengths ? lengths->data() : nullptr;
  b.target = c.target ? c.target->data() : nullptr;
  b.labels = c.labels ? c.labels->data() : nullptr;
  b.mask = mask ? mask->data() : nullptr;
  b.gru_dropout = gru_dropout ? gru_dropout->data() : nullptr;
  b.head_dropout = head_dropout ? head_dropout->data() : nullptr;
  return c;
}

template <class T>
void bind_model_dtype(py::module_& m, const char* name) {
  using Model = fastgru::Model<T>;
  const auto n_params = [](const Model& model) { return static_cast<py::ssize_t>(model.param_count()); };
  py::class_<Model>(m, name,
                    "GRU stack -> dropout -> Dense head -> loss over one flat parameter buffer "
                    "(cpp/include/fastgru/model.h); x is time-major (T, B, I).")
      .def(py::init(
               [](const fastgru::GruConfig& gru, size_t output_size, bool return_sequences, const std::string& loss) {
                 if (output_size < 1) throw py::value_error("output_size: expected an int >= 1");
                 return new Model(fastgru::ModelConfig{gru, output_size, return_sequences, bindings::loss_kind(loss)});
               }),
           py::arg("gru"), py::arg("output_size"), py::arg("return_sequences"), py::arg("loss"))
      .def_property_readonly("param_count", &Model::param_count)
      .def(
          "compute_gradients",
          [n_params](Model& model, const py::array& params, const py::array& grad, Array<T> x,
                     std::optional<Int64Array> lengths, const py::object& target, std::optional<BoolArray> mask,
                     std::optional<Array<T>> gru_dropout, std::optional<Array<T>> head_dropout,
                     double loss_normalizer) {
            const T* p = writable<T>(params, "params", {n_params(model)});
            T* g = writable<T>(grad, "grad", {n_params(model)});
            auto c = check_batch<T>(model.config(), x, lengths, target, mask, gru_dropout, head_dropout);
            fastgru::LossSum loss;
            fastgru_bindings::run_interruptible(
                [&] { loss = model.compute_gradients(p, g, c.batch, loss_normalizer); });
            return py::make_tuple(loss.sum, loss.count);
          },
          py::arg("params"), py::arg("grad"), py::arg("x"), py::arg("lengths"), py::arg("target"), py::arg("mask"),
          py::arg("gru_dropout"), py::arg("head_dropout"), py::arg("loss_normalizer") = 0.0,
          "Forward, loss, backward: adds the gradient of (sum of the valid loss terms) / loss_normalizer "
          "(<= 0: the batch's own count) into grad. Returns (loss_sum, count).")
      .def(
          "apply_gradients",
          [n_params](Model& model, const py::array& params, const py::array& grad, double loss,
                     const fastgru::AdamConfig& adam, bindings::AdamStateArrays& state, double max_norm) {
            T* p = writable<T>(params, "params", {n_params(model)});
            T* g = writable<T>(grad, "grad", {n_params(model)});
            fastgru::AdamState<T> view = bindings::adam_state_view<T>(adam, state, n_params(model));
            fastgru::StepReport r;
            {
              py::gil_scoped_release release;
              r = model.apply_gradients(p, g, loss, adam, view, max_norm);
            }
            state.step = view.step;
            return py::make_tuple(r.applied, r.grad_norm);
          },
          py::arg("params"), py::arg("grad"), py::arg("loss"), py::arg("adam"), py::arg("state"), py::arg("max_norm"),
          "Gradient norm, clipping (max_norm <= 0 or inf: none) folded into the fused Adam/AdamW step "
          "number state.step + 1, which state then counts, then grad zeroed. Returns (applied, grad_norm); "
          "applied is False, and nothing changed, when loss or the norm is not finite.")
      .def(
          "train_step",
          [n_params](Model& model, const py::array& params, const py::array& grad, Array<T> x,
                     std::optional<Int64Array> lengths, const py::object& target, std::optional<BoolArray> mask,
                     std::optional<Array<T>> gru_dropout, std::optional<Array<T>> head_dropout,
                     const fastgru::AdamConfig& adam, bindings::AdamStateArrays& state, double max_norm) {
            T* p = writable<T>(params, "params", {n_params(model)});
            T* g = writable<T>(grad, "grad", {n_params(model)});
            auto c = check_batch<T>(model.config(), x, lengths, target, mask, gru_dropout, head_dropout);
            fastgru::AdamState<T> view = bindings::adam_state_view<T>(adam, state, n_params(model));
            fastgru::StepReport r;
            fastgru_bindings::run_interruptible([&] { r = model.train_step(p, g, c.batch, adam, view, max_norm); });
            state.step = view.step;
            return py::make_tuple(r.loss, r.applied, r.grad_norm);
          },
          py::arg("params"), py::arg("grad"), py::arg("x"), py::arg("lengths"), py::arg("target"), py::arg("mask"),
          py::arg("gru_dropout"), py::arg("head_dropout"), py::arg("adam"), py::arg("state"), py::arg("max_norm"),
          "compute_gradients then apply_gradients with the batch's mean loss. Returns (loss, applied, grad_norm).")
      .def(
          "predict",
          [n_params](Model& model, const py::array& params, Array<T> x, std::optional<Int64Array> lengths) {
            const fastgru::ModelConfig& cfg = model.config();
            Array<T> p = Array<T>::ensure(params);
            if (!p) throw py::type_error("params: expected an array of numbers");
            expect_shape(p, {n_params(model)}, "params");
            check_x(cfg, x, lengths);
            const size_t steps = x.shape(0), batch = x.shape(1), O = cfg.output_size;
            Array<T> out = cfg.return_sequences ? Array<T>({steps, batch, O}) : Array<T>({batch, O});
            fastgru_bindings::run_interruptible([&] {
              model.predict(p.data(), steps, batch, x.data(), lengths ? lengths->data() : nullptr, out.mutable_data());
            });
            return out;
          },
          py::arg("params"), py::arg("x"), py::arg("lengths") = py::none(),
          "Inference: (T, B, O) with return_sequences, else (B, O).");
}

}  // namespace

void bind_model(py::module_& m) {
  m.def(
      "model_param_layout",
      [](const fastgru::GruConfig& gru, size_t output_size) {
        if (output_size < 1) throw py::value_error("output_size: expected an int >= 1");
        return bindings::layout_list(fastgru::model_param_layout(fastgru::ModelConfig{gru, output_size}));
      },
      py::arg("gru"), py::arg("output_size"),
      "[(name, offset, shape)] of a GRUModel's flat buffer: the GRU's tensors as 'gru.<name>', then the "
      "head's as 'head.weight' (O, D*H) and 'head.bias' (O,).");
  bind_model_dtype<float>(m, "Model_float32");
  bind_model_dtype<double>(m, "Model_float64");
}
