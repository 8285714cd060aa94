// registrar validation: the per-row rules (everything except duplicates, which need the
// whole roster in order and are checked by the pipeline's writer).
#pragma once

#include <string>
#include <string_view>

#include "roster.hpp"

namespace registrar {

// Longest field values accepted (bytes, after trimming); longer is `too_long`.
inline constexpr std::size_t kMaxIdBytes = 64;
inline constexpr std::size_t kMaxNameBytes = 320;
inline constexpr std::size_t kMaxEmailBytes = 320;

// Trims the fields, then fails the row (missing_id, missing_name, bad_email) with a precise
// detail, or leaves it `pending` when it is valid. Rows already failed are left alone.
void validate_row(RosterRow& row);

// A pragmatic address check: local@domain, dot-atom local part (RFC 5322 without quoting),
// a domain of at least two LDH labels with an alphabetic TLD. On failure `why` says what.
bool is_valid_email(std::string_view email, std::string* why = nullptr);

}  // namespace registrar
