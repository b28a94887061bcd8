// Chooses the kernel table: the widest instruction set the CPU supports, or the one named
// by FASTGRU_ISA (to test every path on one machine, or to work around a bad CPU).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fastgru/cpu.h"
#include "isa.h"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace fastgru {
namespace detail {
namespace {

#if defined(__aarch64__)
// ARM's extensions, asked of the operating system: GCC 12 has no __builtin_cpu_supports on
// AArch64. Feature names are those of GCC's and Clang's -march=...+<feature>.
bool arm_cpu_supports(const std::string& feature) {
#if defined(__linux__)
  // The bit of <asm/hwcap.h>, spelled out: older C libraries' headers lack it.
  if (feature == "dotprod") return getauxval(AT_HWCAP) & (1ul << 20);  // HWCAP_ASIMDDP
  if (feature == "bf16") return getauxval(AT_HWCAP2) & (1ul << 14);    // HWCAP2_BF16
#elif defined(__APPLE__)
  const char* name = feature == "dotprod" ? "hw.optional.arm.FEAT_DotProd"
                     : feature == "bf16"  ? "hw.optional.arm.FEAT_BF16"
                                          : nullptr;
  int value = 0;
  size_t size = sizeof value;
  if (name && sysctlbyname(name, &value, &size, nullptr, 0) == 0) return value != 0;
#endif
  return false;  // a feature no variant uses yet, or a system we cannot ask: the variant is not used
}
#else
// Linux hands out the AMX tile state (8 KiB more per thread to save on a context switch) only
// to a process that asks for it; without it the first tile instruction faults. Asked once.
bool amx_tile_state_granted() {
#if defined(__linux__) && defined(__x86_64__)
  static const bool granted = [] {
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return granted;
#else
  return false;
#endif
}
#endif

}  // namespace
}  // namespace detail
}  // namespace fastgru

// The CPU feature check of the generated variant table (isa_variants.h). Feature names are
// GCC's and Clang's: on x86 those of their -m<feature> flags, asked of the CPU (AMX needs the
// operating system's consent as well); on ARM the -march=...+<feature> extensions.
#if defined(__aarch64__)
#define FASTGRU_CPU_SUPPORTS(feature) fastgru::detail::arm_cpu_supports(feature)
#else
#define FASTGRU_CPU_SUPPORTS(feature)                       \
  (__builtin_cpu_init(), __builtin_cpu_supports(feature) && \
                             (std::string_view(feature) != "amx-tile" || fastgru::detail::amx_tile_state_granted()))
#endif
#include "isa_variants.h"

namespace fastgru {
namespace detail {
namespace {

// Names match in any case: FASTGRU_ISA=AVX2 is as good as avx2.
const IsaKernels* find(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  for (const auto& c : kIsaVariants) {
    if (lower == c.name) {
      if (!c.supported()) throw std::invalid_argument("instruction set '" + name + "' is not supported by this CPU");
      return c.kernels();
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
        throw std::invalid_argument(std::string("FASTGRU_ISA: ") + e.what() + " (available here: " + available +
                                    "; set_isa() chooses another)");
      }
    }
  }
  const IsaKernels* best = nullptr;
  for (const auto& c : kIsaVariants)
    if (c.supported()) best = c.kernels();
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
  for (const auto& c : detail::kIsaVariants)
    if (c.supported()) names.emplace_back(c.name);
  return names;
}

std::string active_isa() { return detail::active_kernels().name; }

void set_isa(const std::string& name) { detail::g_active.store(detail::find(name), std::memory_order_release); }

}  // namespace fastgru
