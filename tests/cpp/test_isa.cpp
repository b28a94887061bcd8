// Instruction-set dispatch: available_isas() starts with the generic path and, on AArch64, has
// the NEON variant (every AArch64 CPU has Advanced SIMD); the one in use at start is the last
// available, or the one FASTGRU_ISA names; set_isa() rejects an unknown name. Prints the list
// and the choice, which tests/test_cpp_core.py reads back for the emulated CPUs it runs this on.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastgru/cpu.h"

using namespace fastgru;
using namespace fastgru_test;

int main() {
  Checker check;
  const std::vector<std::string> isas = available_isas();
  std::string listed;
  for (const std::string& isa : isas) listed += " " + isa;
  std::printf("available:%s\nactive: %s\n", listed.c_str(), active_isa().c_str());
  check.expect("generic is available, first", !isas.empty() && isas.front() == "generic");
#if defined(__aarch64__)
  check.expect("neon is available on AArch64", std::find(isas.begin(), isas.end(), "neon") != isas.end());
#endif
  std::string want = isas.back();
  if (const char* forced = std::getenv("FASTGRU_ISA"); forced && *forced) {
    want = forced;
    std::transform(want.begin(), want.end(), want.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  }
  check.expect("the instruction set in use at start is " + want, active_isa() == want);
  check.throws<std::invalid_argument>("set_isa of an unknown name", [] { set_isa("no_such_isa"); });
  for (const std::string& isa : isas) {
    set_isa(isa);
    check.expect("set_isa(" + isa + ") is then in use", active_isa() == isa);
  }
  return check.report("test_isa");
}
