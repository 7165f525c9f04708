// The CUDA module loader and its API version check, without a GPU: ctest
// runs this once per MODE with MOESIM_CUDA_MODULE pointing at a missing file
// or at the fake module (fake_cuda_module.cpp), configured by environment.
//   absent       no file: module and device unavailable, "cuda: ... is not there"
//   old-version  the fake reports API version 1: refused, both versions named
//   no-device    the module loads, device_available says why not
//   fake         a timer opens; its description, refusals and samples come
//                through the C boundary unchanged

#include <cmath>
#include <cstdio>
#include <string>

#include "hwmodels/kernels/cuda_module_api.h"
#include "hwmodels/kernels/gpu_timer.h"
#include "hwmodels/kernels/moe_layer_cuda.h"
#include "sim/core/error.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The message open_cuda_timer throws (empty if it does not).
std::string open_error() {
  try {
    moesim::kern::open_cuda_timer();
  } catch (const moesim::Error& e) {
    return e.what();
  }
  return "";
}

void check_fake_timer() {
  using namespace moesim::kern;
  const auto timer = open_cuda_timer();
  const GpuDescription d = timer->describe();
  expect(d.name == "Fake GPU (moesim test module)", "describe: name " + d.name);
  expect(d.compute_capability_major == 8 && d.compute_capability_minor == 0,
         "describe: compute capability");
  expect(d.runtime_version == "CUDA runtime 13.0", "describe: runtime " + d.runtime_version);
  GpuOp fp8;
  fp8.dtype = moesim::hw::DType::kFp8;
  fp8.m = fp8.n = fp8.k = 256;
  expect(contains(timer->unsupported(fp8), "compute capability 8.9"), "FP8 refused with why");
  GpuOp bf16 = fp8;
  bf16.dtype = moesim::hw::DType::kBf16;
  expect(timer->unsupported(bf16).empty(), "BF16 GEMM runs");
  GpuOp copy;
  copy.kind = GpuOpKind::kCopy;
  copy.bytes = 2'000'000;
  const GpuOp ops[] = {bf16, copy};
  timer->prepare(ops);
  // 2*256^3 / 400 TFLOP/s + 2 us per call, 3 calls; a copy 1 us + 2 us.
  const double gemm_s = timer->sample_seconds(0, 3);
  expect(std::abs(gemm_s - 3 * (2.0 * 256 * 256 * 256 / 400e12 + 2e-6)) < 1e-15,
         "GEMM sample is the module's closed form");
  expect(std::abs(timer->sample_seconds(1, 1) - 3e-6) < 1e-15, "copy sample");
  bool threw = false;
  try {
    timer->sample_seconds(2, 1);
  } catch (const moesim::Error& e) {
    threw = contains(e.what(), "cuda: timer_sample: no such prepared operation");
  }
  expect(threw, "a module error comes back as moesim::Error with the module's text");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moesim::kern;
  const std::string mode = argc > 1 ? argv[1] : "";
  std::string why;
  if (mode == "absent") {
    expect(!cuda::module_available(&why), "module unavailable");
    expect(contains(why, "is not there"), "why names the missing file: " + why);
    expect(!cuda::device_available(&why), "device unavailable without a module");
    expect(open_error().rfind("cuda: ", 0) == 0, "open_cuda_timer: " + open_error());
  } else if (mode == "old-version") {
    expect(!cuda::module_available(&why), "a module of API version 1 is refused");
    expect(contains(why, "API version 1; this moesim needs version " +
                             std::to_string(kMoesimCudaApiVersion)),
           "why names both versions: " + why);
    expect(contains(open_error(), "rebuild the module"), "open_cuda_timer: " + open_error());
  } else if (mode == "no-device") {
    expect(cuda::module_available(&why), "the module loads: " + why);
    expect(!cuda::device_available(&why), "no device");
    expect(why == "no CUDA device (fake module)", "why: " + why);
    expect(open_error() == "cuda: no usable GPU: no CUDA device (fake module)",
           "open_cuda_timer: " + open_error());
  } else if (mode == "fake") {
    expect(cuda::device_available(&why), "fake device available: " + why);
    check_fake_timer();
  } else {
    std::printf("usage: %s absent|old-version|no-device|fake\n", argv[0]);
    return 2;
  }
  std::printf("%s: %s\n", mode.c_str(), failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
