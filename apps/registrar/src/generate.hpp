// registrar roster generator: deterministic synthetic rosters for demos, tests and benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "roster.hpp"

namespace registrar {

struct GenOptions {
  std::uint64_t count = 1000;  // rows
  std::uint64_t seed = 42;     // same seed, same roster (std::mt19937_64 is portable)
  InputFormat format = InputFormat::csv;
  unsigned invalid_permille = 10;    // rows with a missing id, missing name or bad email
  unsigned duplicate_permille = 10;  // rows repeating an earlier valid student
};

struct GenStats {
  std::uint64_t rows = 0;
  std::uint64_t invalid = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t valid_unique = 0;  // rows that can be registered
};

// Writes the roster through `write` (called with pieces of the text) and returns its makeup.
// Some names contain commas and quotes, so CSV quoting is exercised.
GenStats generate_roster(const GenOptions& options,
                         const std::function<void(std::string_view)>& write);

}  // namespace registrar
