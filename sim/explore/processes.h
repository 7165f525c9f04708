#pragma once
// Spreading the work of one command over processes (MPI ranks) without the
// explore library knowing MPI: the command line fills this from
// sim/app/explore/distributed.h. Item i of the work belongs to rank
// i mod size; `gather` brings every item's string to rank 0 (results[i] from
// the rank owning i; other ranks get an empty vector). One process (the
// default) owns everything and needs no gather.
//
// OutcomeWriter and OutcomeReader carry what a simulation added to a search
// candidate from the rank that ran it to rank 0: numbers as their exact bits
// (so a ranking gathered from ranks equals the one-process ranking byte for
// byte), strings with their lengths.

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace moesim::explore {

struct Processes {
  int rank = 0, size = 1;
  std::function<std::vector<std::string>(std::vector<std::string>)> gather;
  bool owns(size_t item) const { return static_cast<int>(item % size) == rank; }
};

class OutcomeWriter {
 public:
  OutcomeWriter& number(double value) {
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    bytes_.append(reinterpret_cast<const char*>(&bits), sizeof bits);
    return *this;
  }
  OutcomeWriter& text(std::string_view value) {
    number(static_cast<double>(value.size()));
    bytes_.append(value);
    return *this;
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

// Reads what an OutcomeWriter wrote, in the same order. The bytes come from
// this program on another rank, so a short or malformed string is a bug:
// std::logic_error.
class OutcomeReader {
 public:
  explicit OutcomeReader(std::string_view bytes) : bytes_(bytes) {}
  double number() {
    uint64_t bits = 0;
    if (bytes_.size() < sizeof bits) throw std::logic_error("search outcome: truncated");
    std::memcpy(&bits, bytes_.data(), sizeof bits);
    bytes_.remove_prefix(sizeof bits);
    return std::bit_cast<double>(bits);
  }
  std::string text() {
    const double length = number();
    if (!(length >= 0 && length <= static_cast<double>(bytes_.size()))) {
      throw std::logic_error("search outcome: bad string length");
    }
    std::string value(bytes_.substr(0, static_cast<size_t>(length)));
    bytes_.remove_prefix(value.size());
    return value;
  }
  bool done() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

}  // namespace moesim::explore
