// Chooses the kernel table: the widest instruction set the CPU supports, or the one named
// by FASTGRU_ISA (to test every path on one machine, or to work around a bad CPU).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include "fastgru/cpu.h"
#include "isa.h"

namespace fastgru {
namespace detail {
namespace {

struct Candidate {
  const char* name;
  const IsaKernels* (*table)();
  bool (*supported)();
};

bool always() { return true; }
#if defined(FASTGRU_X86)
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() {
  __builtin_cpu_init();
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
#endif

const Candidate kCandidates[] = {
    {"generic", isa_kernels_generic, always},
#if defined(FASTGRU_X86)
    {"avx2", isa_kernels_avx2, has_avx2},
    {"avx512", isa_kernels_avx512, has_avx512},
#endif
};

// Names match in any case: FASTGRU_ISA=AVX2 is as good as avx2.
const IsaKernels* find(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  for (const auto& c : kCandidates) {
    if (lower == c.name) {
      if (!c.supported()) throw std::invalid_argument("instruction set '" + name + "' is not supported by this CPU");
      return c.table();
    }
  }
  throw std::invalid_argument("unknown instruction set '" + name + "'");
}

const IsaKernels* choose_initial() {
  if (const char* env = std::getenv("FASTGRU_ISA")) {
    if (*env) {
      try {
        return find(env);
      } catch (const std::invalid_argument& e) {
        std::string available;
        for (const auto& name : available_isas()) available += (available.empty() ? "" : ", ") + name;
        throw std::invalid_argument(std::string("FASTGRU_ISA: ") + e.what() + " (available here: " +
                                    available + "; set_isa() chooses another)");
      }
    }
  }
  const IsaKernels* best = nullptr;
  for (const auto& c : kCandidates)
    if (c.supported()) best = c.table();
  return best;
}

// Chosen at first use, so that a bad FASTGRU_ISA is reported as an error then, and set_isa()
// can still choose another.
std::atomic<const IsaKernels*> g_active{nullptr};

}  // namespace

const IsaKernels& active_kernels() {
  const IsaKernels* table = g_active.load(std::memory_order_acquire);
  if (!table) {
    table = choose_initial();
    g_active.store(table, std::memory_order_release);
  }
  return *table;
}

}  // namespace detail

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const auto& c : detail::kCandidates)
    if (c.supported()) names.emplace_back(c.name);
  return names;
}

std::string active_isa() { return detail::active_kernels().name; }

void set_isa(const std::string& name) {
  detail::g_active.store(detail::find(name), std::memory_order_release);
}

}  // namespace fastgru
