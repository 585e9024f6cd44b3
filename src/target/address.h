// Addresses in the target process, as a type of their own: a RemoteAddress
// is never a pointer of graft's, and never a link-time address of an ELF
// file (those become one only through a load bias, `LoadBias::at`).
#pragma once
#include <compare>
#include <cstdint>

#include <fmt/format.h>

namespace graft {

class RemoteAddress {
 public:
  constexpr RemoteAddress() = default;
  constexpr explicit RemoteAddress(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr bool null() const { return value_ == 0; }
  constexpr explicit operator bool() const { return value_ != 0; }

  constexpr RemoteAddress operator+(uint64_t n) const { return RemoteAddress(value_ + n); }
  constexpr RemoteAddress operator-(uint64_t n) const { return RemoteAddress(value_ - n); }
  constexpr RemoteAddress& operator+=(uint64_t n) { value_ += n; return *this; }
  // The distance between two addresses of the target.
  constexpr uint64_t operator-(RemoteAddress other) const { return value_ - other.value_; }
  constexpr RemoteAddress aligned_down(uint64_t alignment) const { return RemoteAddress(value_ & ~(alignment - 1)); }
  constexpr auto operator<=>(const RemoteAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

// An address as an ELF file or its DWARF gives it, before loading.
class LinkAddress {
 public:
  constexpr LinkAddress() = default;
  constexpr explicit LinkAddress(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr auto operator<=>(const LinkAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

// Where a module is loaded: its link-time addresses plus the bias.
class LoadBias {
 public:
  constexpr LoadBias() = default;
  constexpr explicit LoadBias(uint64_t value) : value_(value) {}
  constexpr RemoteAddress at(LinkAddress a) const { return RemoteAddress(a.value() + value_); }
  constexpr uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

}  // namespace graft

template <>
struct fmt::formatter<graft::RemoteAddress> : fmt::formatter<uint64_t> {
  auto format(graft::RemoteAddress a, format_context& ctx) const { return fmt::formatter<uint64_t>::format(a.value(), ctx); }
};
template <>
struct fmt::formatter<graft::LinkAddress> : fmt::formatter<uint64_t> {
  auto format(graft::LinkAddress a, format_context& ctx) const { return fmt::formatter<uint64_t>::format(a.value(), ctx); }
};
