// Instruction-set dispatch. Hot kernels exist once per instruction set; the best one the CPU
// supports is chosen at first use, unless the FASTGRU_ISA environment variable names another.
#pragma once
#include <string>
#include <vector>

namespace fastgru {

// Instruction sets this build has kernels for and this CPU can run, lowest first
// (e.g. {"generic", "avx2", "avx512"}).
std::vector<std::string> available_isas();

// The instruction set in use.
std::string active_isa();

// Selects an instruction set by name (in any case); throws std::invalid_argument if it is unknown or
// not supported here. Not thread-safe with running computations.
void set_isa(const std::string& name);

}  // namespace fastgru
