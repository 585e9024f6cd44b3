// The generated default transformer: a value of an old type, rewritten in
// the new type's layout. Fields by name, numbers converted as C converts
// them, enumerators by name, new fields left at their default.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "data/plan.h"
#include "data/type_compare.h"

namespace graft {
namespace {

struct Number {
  enum { Integer, Unsigned, Floating } kind = Integer;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
};

uint64_t load_bits(const uint8_t* base, uint64_t offset, uint32_t bit_offset, uint32_t bit_size, uint64_t bytes) {
  if (!bit_size) {
    uint64_t v = 0;
    std::memcpy(&v, base + offset, std::min<uint64_t>(bytes, 8));
    return v;
  }
  uint64_t v = 0;
  for (uint32_t k = 0; k < bit_size; ++k) {
    const uint64_t bit = bit_offset + k;
    if (base[offset + bit / 8] >> (bit % 8) & 1) v |= uint64_t{1} << k;
  }
  return v;
}

void store_bits(uint8_t* base, uint64_t offset, uint32_t bit_offset, uint32_t bit_size, uint64_t bytes, uint64_t v) {
  if (!bit_size) {
    std::memcpy(base + offset, &v, std::min<uint64_t>(bytes, 8));
    return;
  }
  for (uint32_t k = 0; k < bit_size; ++k) {
    const uint64_t bit = bit_offset + k;
    uint8_t& byte = base[offset + bit / 8];
    const uint8_t mask = static_cast<uint8_t>(1u << (bit % 8));
    byte = (v >> k & 1) ? (byte | mask) : (byte & ~mask);
  }
}

bool is_signed(const TypeTable& t, const Type& type) {
  if (type.kind == TypeKind::Signed) return true;
  if (type.kind == TypeKind::Enum) {
    if (type.target >= 0) return t.at(type.target).kind == TypeKind::Signed;
    for (const auto& e : type.enumerators)
      if (e.second < 0) return true;
  }
  return false;
}

Number load_number(const TypeTable& t, const Type& type, const uint8_t* base, const Field& f) {
  Number n;
  const uint64_t raw = load_bits(base, f.offset, f.bit_offset, f.bit_size, type.size);
  const uint32_t width = f.bit_size ? f.bit_size : static_cast<uint32_t>(type.size * 8);
  if (type.kind == TypeKind::Float) {
    n.kind = Number::Floating;
    if (type.size == 4) {
      float v;
      std::memcpy(&v, base + f.offset, 4);
      n.f = v;
    } else {
      std::memcpy(&n.f, base + f.offset, 8);
    }
  } else if (is_signed(t, type)) {
    n.kind = Number::Integer;
    n.i = width >= 64 ? static_cast<int64_t>(raw)
                      : static_cast<int64_t>(raw << (64 - width)) >> (64 - width);  // sign-extend
  } else {
    n.kind = Number::Unsigned;
    n.u = raw;
  }
  return n;
}

void store_number(const TypeTable& t, const Type& type, uint8_t* base, const Field& f, Number n) {
  if (type.kind == TypeKind::Float) {
    const double v = n.kind == Number::Floating ? n.f : n.kind == Number::Integer ? static_cast<double>(n.i)
                                                                                  : static_cast<double>(n.u);
    if (type.size == 4) {
      const float narrow = static_cast<float>(v);
      std::memcpy(base + f.offset, &narrow, 4);
    } else {
      std::memcpy(base + f.offset, &v, 8);
    }
    return;
  }
  uint64_t raw = n.kind == Number::Floating ? (is_signed(t, type) ? static_cast<uint64_t>(static_cast<int64_t>(n.f))
                                                                  : static_cast<uint64_t>(n.f))
                 : n.kind == Number::Integer ? static_cast<uint64_t>(n.i)
                                             : n.u;
  if (type.kind == TypeKind::Bool) raw = raw != 0 || (n.kind == Number::Floating && n.f != 0);
  store_bits(base, f.offset, f.bit_offset, f.bit_size, type.size, raw);
}

}  // namespace

class Transformer::Impl {
 public:
  Impl(const TypeTable& from, const TypeTable& to) : from_(from), to_(to), compare_(from, to) {}

  // A whole value, by the steps compiled once for its pair of types: a
  // million objects of one type walk the types once, then copy.
  void whole(int from_type, const uint8_t* src, int to_type, uint8_t* dst) {
    if (!last_ || last_->first != std::pair{from_type, to_type}) {
      auto [it, fresh] = programs_.try_emplace({from_type, to_type});
      if (fresh) compile({"", 0, 0, 0, from_type}, {"", 0, 0, 0, to_type}, it->second);
      last_ = &*it;
    }
    for (const Step& step : last_->second) {
      if (step.convert == kCopy) {
        std::memcpy(dst + step.to, src + step.from, step.size);
      } else if (step.convert == kCutString) {
        // A char array that shrinks keeps a string only if the string ends
        // in what is kept (or nothing but zeros is lost): cut, it would have
        // no end, and the new code would read past it.
        const Cut& cut = cuts_[static_cast<size_t>(step.to)];
        const uint8_t* begin = src + step.from;
        if (!loss_ && !std::memchr(begin, 0, cut.kept) &&
            std::any_of(begin + cut.kept, begin + cut.total, [](uint8_t b) { return b != 0; }))
          loss_ = Loss{cut.path, fmt::format("a string of {} bytes or more", cut.kept + 1), cut.type, true};
      } else {
        const auto& [a, b] = conversions_[static_cast<size_t>(step.convert)];
        convert(a, src, b, dst);
      }
    }
  }

  // What the default does with old field `a` and new field `b` (offsets from
  // the value's start): bytes that need no change as copies (neighbours
  // joined), pointers copied, aggregates field by field, the rest as
  // conversions (convert()).
  static constexpr int kCopy = -1, kCutString = -2;
  struct Step {
    uint64_t from = 0, to = 0, size = 0;
    // kCopy; kCutString: a check that a char array that shrinks keeps its
    // string whole (`from` its start, `to` an index in cuts_); else an
    // index in conversions_
    int convert = kCopy;
  };
  void compile(const Field& a, const Field& b, std::vector<Step>& out) {
    const Type& x = from_.at(a.type);
    const Type& y = to_.at(b.type);
    auto copy = [&](uint64_t size) {
      if (!out.empty() && out.back().convert == kCopy && out.back().from + out.back().size == a.offset &&
          out.back().to + out.back().size == b.offset)
        out.back().size += size;
      else
        out.push_back({a.offset, b.offset, size});
    };
    if (!a.bit_size && !b.bit_size && !compare_.differs(a.type, b.type)) {
      copy(y.size);
    } else if (x.kind == TypeKind::Pointer && y.kind == TypeKind::Pointer) {
      copy(8);
    } else if (x.kind == TypeKind::Struct && y.kind == TypeKind::Struct) {
      // Names become paths inside the value ("inner.level"), for messages.
      for (const auto& [o, f] : matched(a.type, b.type)) {
        const std::string path = a.name.empty() ? o.name : a.name + "." + o.name;
        compile({path, a.offset + o.offset, o.bit_size, o.bit_offset, o.type},
                {path, b.offset + f.offset, f.bit_size, f.bit_offset, f.type}, out);
      }
    } else if (x.kind == TypeKind::Array && y.kind == TypeKind::Array) {
      const uint64_t xs = from_.at(x.target).size, ys = to_.at(y.target).size;
      for (uint64_t k = 0; k < std::min(x.count, y.count); ++k) {
        const std::string path = fmt::format("{}[{}]", a.name, k);
        compile({path, a.offset + k * xs, 0, 0, x.target}, {path, b.offset + k * ys, 0, 0, y.target}, out);
      }
      if (x.count > y.count && y.count > 0 && xs == 1 && ys == 1) {
        cuts_.push_back({a.name, to_.spell(b.type), y.count, x.count});
        out.push_back({a.offset, cuts_.size() - 1, 0, kCutString});
      }
    } else if (const Member* m = sole_member(to_, b.type); m && x.kind != TypeKind::Struct) {
      // A number wrapped in a struct of one member: its value goes there.
      compile(a, {b.name, b.offset + m->offset, 0, 0, m->type}, out);
    } else if (const Member* m = sole_member(from_, a.type); m && y.kind != TypeKind::Struct) {
      compile({a.name, a.offset + m->offset, 0, 0, m->type}, b, out);
    } else {
      conversions_.emplace_back(a, b);
      out.push_back({0, 0, 0, static_cast<int>(conversions_.size() - 1)});
    }
  }

  // An enumerator (by name) or a number (as C converts it), bit-fields
  // included, from `src` (old field `a`) into `dst` (new field `b`).
  void convert(const Field& a, const uint8_t* src, const Field& b, uint8_t* dst) {
    const Type& x = from_.at(a.type);
    const Type& y = to_.at(b.type);
    if (x.kind == TypeKind::Enum && y.kind == TypeKind::Enum) {
      Number n = load_number(from_, x, src, a);
      const int64_t v = n.kind == Number::Integer ? n.i : static_cast<int64_t>(n.u);
      bool named = false;
      for (const auto& [name, value] : x.enumerators)
        if (value == v)
          for (const auto& [other, other_value] : y.enumerators)
            if (other == name) {
              n.kind = Number::Integer;
              n.i = other_value;
              named = true;
            }
      store_number(to_, y, dst, b, n);
      if (exact_ && !named) check(a, load_number(from_, x, src, a), b, dst);
    } else if (is_number(x) && is_number(y)) {
      const Number n = load_number(from_, x, src, a);
      store_number(to_, y, dst, b, n);
      if (exact_) check(a, n, b, dst);
    }
    // Anything else was refused when the patch was made; the default stays.
  }

  // Exact mode: whether the number stored in `dst` is the value it came from.
  void check(const Field& a, const Number& n, const Field& b, const uint8_t* dst) {
    const Number back = load_number(to_, to_.at(b.type), dst, b);
    if (same_value(n, back) || loss_) return;
    const std::string type = to_.spell(b.type) + (b.bit_size ? fmt::format(":{}", b.bit_size) : "");
    loss_ = Loss{a.name, n.kind == Number::Floating ? fmt::format("{}", n.f)
                         : n.kind == Number::Integer ? std::to_string(n.i) : std::to_string(n.u), type};
  }
  static bool same_value(const Number& a, const Number& b) {
    auto as_double = [](const Number& n) {
      return n.kind == Number::Floating ? n.f : n.kind == Number::Integer ? static_cast<double>(n.i)
                                                                          : static_cast<double>(n.u);
    };
    if (a.kind == Number::Floating || b.kind == Number::Floating) {
      const double x = as_double(a), y = as_double(b);
      return x == y || (x != x && y != y);
    }
    if (a.kind == b.kind) return a.kind == Number::Integer ? a.i == b.i : a.u == b.u;
    const Number& i = a.kind == Number::Integer ? a : b;
    const Number& u = a.kind == Number::Integer ? b : a;
    return i.i >= 0 && static_cast<uint64_t>(i.i) == u.u;
  }

  void set_exact(bool exact) { exact_ = exact; }
  std::optional<Loss> lost() { return std::exchange(loss_, std::nullopt); }

  // Walks a value as compile() does, collecting the structs `wanted` picks.
  void nested(const Field& a, const Field& b, int depth, const std::function<bool(int)>& wanted,
              std::vector<Nested>& out) {
    if (a.bit_size || b.bit_size || !compare_.differs(a.type, b.type)) return;
    const Type& x = from_.at(a.type);
    const Type& y = to_.at(b.type);
    if (x.kind == TypeKind::Struct && y.kind == TypeKind::Struct) {
      if (wanted(a.type)) out.push_back({a.type, b.type, a.offset, b.offset, depth});
      for (const auto& [o, f] : matched(a.type, b.type))
        nested({o.name, a.offset + o.offset, o.bit_size, o.bit_offset, o.type},
               {f.name, b.offset + f.offset, f.bit_size, f.bit_offset, f.type}, depth + 1, wanted, out);
    } else if (x.kind == TypeKind::Array && y.kind == TypeKind::Array) {
      const uint64_t xs = from_.at(x.target).size, ys = to_.at(y.target).size;
      for (uint64_t k = 0; k < std::min(x.count, y.count); ++k)
        nested({"", a.offset + k * xs, 0, 0, x.target}, {"", b.offset + k * ys, 0, 0, y.target}, depth, wanted, out);
    }
  }

 private:
  // The fields of two struct types the default pairs: same name.
  const std::vector<std::pair<Field, Field>>& matched(int from_type, int to_type) {
    auto [it, fresh] = pairs_.try_emplace({from_type, to_type});
    if (fresh) {
      const auto before = fields_of(from_, from_type);
      for (const auto& f : fields_of(to_, to_type))
        for (const auto& o : before)
          if (!f.name.empty() && o.name == f.name) it->second.emplace_back(o, f);
    }
    return it->second;
  }

  static bool is_number(const Type& t) {
    return t.kind == TypeKind::Signed || t.kind == TypeKind::Unsigned || t.kind == TypeKind::Bool ||
           t.kind == TypeKind::Enum || t.kind == TypeKind::Float;
  }

  const TypeTable& from_;
  const TypeTable& to_;
  TypeComparison compare_;
  std::map<std::pair<int, int>, std::vector<std::pair<Field, Field>>> pairs_;  // matched fields, per pair of types
  struct Cut {
    std::string path, type;      // the array in the value ("name", "" for the value itself), its new type
    uint64_t kept = 0, total = 0;  // its new and old lengths
  };
  std::vector<Cut> cuts_;  // per kCutString step
  std::map<std::pair<int, int>, std::vector<Step>> programs_;  // whole(), per pair of types
  std::pair<const std::pair<int, int>, std::vector<Step>>* last_ = nullptr;
  std::vector<std::pair<Field, Field>> conversions_;  // the fields of compiled conversion steps
  bool exact_ = false;
  std::optional<Loss> loss_;
};

Transformer::Transformer(const TypeTable& from, const TypeTable& to) : impl_(std::make_unique<Impl>(from, to)) {}
Transformer::~Transformer() = default;

void Transformer::operator()(int from, const uint8_t* from_bytes, int to, uint8_t* to_bytes) {
  impl_->whole(from, from_bytes, to, to_bytes);
}

void Transformer::set_exact(bool exact) { impl_->set_exact(exact); }
std::optional<Transformer::Loss> Transformer::lost() { return impl_->lost(); }

std::vector<Transformer::Nested> Transformer::nested(int from, int to, const std::function<bool(int)>& wanted) {
  std::vector<Nested> out;
  impl_->nested({"", 0, 0, 0, from}, {"", 0, 0, 0, to}, 0, wanted, out);
  return out;
}

void transform_value(const TypeTable& from_types, int from, const uint8_t* from_bytes, const TypeTable& to_types,
                     int to, uint8_t* to_bytes) {
  Transformer(from_types, to_types)(from, from_bytes, to, to_bytes);
}

}  // namespace graft
