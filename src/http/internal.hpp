// goro::http internal helpers shared by the files of src/http (never installed).
// Pure functions over strings: no state, no lifetimes beyond the call.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace goro::http::detail {

bool iequals(std::string_view a, std::string_view b);
// %XX decoding (and '+' as space in query strings); nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace goro::http::detail
