#pragma once
// Numeric data types a GPU computes in and tensors are stored in.

#include <array>
#include <optional>
#include <string_view>

namespace moesim::hw {

enum class DType { kFp32, kTf32, kBf16, kFp16, kFp8 };

inline constexpr std::array<DType, 5> kAllDTypes = {DType::kFp32, DType::kTf32, DType::kBf16,
                                                    DType::kFp16, DType::kFp8};

// Storage size of one element (TF32 is stored as FP32).
constexpr double bytes_per_element(DType t) {
  switch (t) {
    case DType::kFp32:
    case DType::kTf32:
      return 4;
    case DType::kBf16:
    case DType::kFp16:
      return 2;
    case DType::kFp8:
      return 1;
  }
  return 4;
}

// JSON names: "fp32", "tf32", "bf16", "fp16", "fp8".
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kFp32:
      return "fp32";
    case DType::kTf32:
      return "tf32";
    case DType::kBf16:
      return "bf16";
    case DType::kFp16:
      return "fp16";
    case DType::kFp8:
      return "fp8";
  }
  return "fp32";
}

inline std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : kAllDTypes) {
    if (dtype_name(t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace moesim::hw
