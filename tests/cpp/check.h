// What every C++ test of the core shares: random data, a comparison that records the worst
// relative error, and a summary line. A test's main returns report(): nonzero on any failure.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "fastgru/cpu.h"

namespace fastgru_test {

inline std::mt19937& rng() {
  static std::mt19937 gen(1234);
  return gen;
}

template <class T>
std::vector<T> random_vector(size_t n, double bound = 1.0) {
  std::uniform_real_distribution<double> dist(-bound, bound);
  std::vector<T> v(n);
  for (T& e : v) e = static_cast<T>(dist(rng()));
  return v;
}

struct Checker {
  int checks = 0, failures = 0;
  double worst = 0;

  // Largest |got - want| over max(1, max |want|): relative for large values, absolute for small.
  template <class A, class B>
  void close(const std::string& what, const A* got, const B* want, size_t n, double tolerance) {
    double scale = 1, diff = 0;
    for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    for (size_t i = 0; i < n; ++i) {
      const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    }
    record(what, diff / scale, tolerance);
  }
  template <class A, class B>
  void close(const std::string& what, const std::vector<A>& got, const std::vector<B>& want, double tolerance) {
    if (got.size() != want.size()) return expect(what + ": sizes differ", false);
    close(what, got.data(), want.data(), got.size(), tolerance);
  }
  void record(const std::string& what, double error, double tolerance) {
    ++checks;
    worst = std::max(worst, error);
    if (!(error <= tolerance)) {
      ++failures;
      std::printf("FAIL %s: error %.3g > tolerance %.1g\n", what.c_str(), error, tolerance);
    }
  }
  void expect(const std::string& what, bool ok) {
    ++checks;
    if (!ok) {
      ++failures;
      std::printf("FAIL %s\n", what.c_str());
    }
  }
  // Runs f(), which must throw E (and nothing else).
  template <class E, class F>
  void throws(const std::string& what, F f) {
    bool ok = false;
    try {
      f();
    } catch (const E&) {
      ok = true;
    } catch (...) {
    }
    expect(what + " throws", ok);
  }
  int report(const char* name) const {
    std::printf("%s: %d checks, %d failed, worst relative error %.3g\n", name, checks, failures, worst);
    return failures ? 1 : 0;
  }
};

// Runs body() once per instruction set this build and CPU support (the generic path always).
template <class F>
void for_each_isa(F body) {
  for (const std::string& isa : fastgru::available_isas()) {
    fastgru::set_isa(isa);
    body(isa);
  }
}

}  // namespace fastgru_test
