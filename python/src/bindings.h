// Each bind_*.cpp adds one part of the C++ core to the fastgru._core module.
#pragma once
#include <pybind11/pybind11.h>

void bind_gru(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_runtime(pybind11::module_& m);
void bind_model(pybind11::module_& m);
