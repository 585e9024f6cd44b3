// Errors as values: every fallible call returns Result<T>, an error carries a
// one-line message with the context added on the way up.
#pragma once
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace graft {

struct Error {
  std::string message;
  // The moment was wrong, not the update (a thread held, just then, an
  // address graft cannot rewrite): the search for a safe moment goes on.
  bool transient = false;

  // Prefixes context, e.g. Error{"no such file"}.context("reading x.o")
  // gives "reading x.o: no such file".
  Error context(const std::string& what) const& { return Error{what + ": " + message, transient}; }
};

// An error of the moment (Error::transient): another moment may not have it.
inline Error of_the_moment(Error error) {
  error.transient = true;
  return error;
}

template <typename... Args>
Error make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

// Error from errno, e.g. errno_error("open {}", path) -> "open x: No such file or directory".
Error errno_error(const std::string& what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const T& value() const& { return std::get<0>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok() { return Unit{}; }

}  // namespace graft

// Propagates an error from an expression returning Result<T>/Status.
#define GRAFT_TRY(expr)                          \
  do {                                           \
    auto graft_try_result_ = (expr);             \
    if (!graft_try_result_) return graft_try_result_.error(); \
  } while (0)

// Evaluates a Result<T>, assigns its value to `lhs` or returns its error.
#define GRAFT_CONCAT_INNER(a, b) a##b
#define GRAFT_CONCAT(a, b) GRAFT_CONCAT_INNER(a, b)
#define GRAFT_ASSIGN(lhs, expr) GRAFT_ASSIGN_IMPL(GRAFT_CONCAT(graft_result_, __LINE__), lhs, expr)
#define GRAFT_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                      \
  if (!tmp) return tmp.error();           \
  lhs = std::move(tmp).value()
