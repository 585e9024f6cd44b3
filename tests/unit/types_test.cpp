// Types from DWARF and the generated transformer, on binaries built by both
// compilers graft meets (gcc and clang encode bit-fields differently).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "../support/harness.h"
#include "data/plan.h"
#include "elf/types.h"

namespace graft::test {
namespace {

constexpr const char* kSource = R"(
enum mode { OFF, ON, AUTO };
struct bits {
  unsigned a : 3;
  unsigned b : 5;
  int c : 9;
  unsigned char d;
  unsigned e : 20;
  enum mode m;
  short s;
  float f;
};
struct bits g = {5, 17, -100, 7, 123456, AUTO, -3, 2.5f};
int main(void) { return g.a; }
)";

// The same values as plain fields, and the enum renumbered: where the transformer must put them.
Type plain_int(const char* name, TypeKind kind, uint64_t size) { return {kind, name, size, -1, 0, false, {}, {}}; }

class Types : public ::testing::TestWithParam<const char*> {
 protected:
  TempDir dir;
};

// `source` built as `name` by `compiler` (a command and its flags) at `optimisation`, opened.
Result<std::unique_ptr<ElfFile>> build_and_open(const TempDir& dir, const std::string& name, const char* source,
                                                const std::string& compiler, const std::string& optimisation) {
  const auto path = dir.path() / (name + ".c");
  std::ofstream(path) << source;
  const auto binary = dir.path() / name;
  std::vector<std::string> command;
  std::istringstream words(compiler);
  for (std::string w; words >> w;) command.push_back(w);
  for (const std::string& a : {optimisation, std::string("-o"), binary.string(), path.string()}) command.push_back(a);
  auto built = run(command);
  if (built.exit_code != 0) return make_error("{} failed: {}", compiler, built.err);
  return ElfFile::open(binary);
}

TEST_P(Types, BitFieldsEnumsAndNumbersConvertFromEitherCompiler) {
  auto elf = build_and_open(dir, "bits", kSource, GetParam(), "-O0");
  ASSERT_TRUE(elf) << elf.error().message;
  auto table = read_type_table(*elf.value());
  ASSERT_TRUE(table) << table.error().message;
  const int bits = table->find("struct bits");
  ASSERT_GE(bits, 0);
  const Type& t = table->at(bits);
  ASSERT_EQ(t.members.size(), 8u);
  // Bit positions, normalised from DW_AT_data_bit_offset (clang, gcc 11+) or DW_AT_bit_offset (older gcc).
  EXPECT_EQ(t.members[0].offset * 8 + t.members[0].bit_offset, 0u);
  EXPECT_EQ(t.members[1].offset * 8 + t.members[1].bit_offset, 3u);
  EXPECT_EQ(t.members[2].offset * 8 + t.members[2].bit_offset, 8u);
  EXPECT_EQ(t.members[2].bit_size, 9u);

  // g's initial bytes, from the binary's .data.
  const Variable* g = nullptr;
  for (const auto& v : table->variables)
    if (v.key == "g") g = &v;
  ASSERT_NE(g, nullptr);
  std::vector<uint8_t> bytes;
  for (const auto& s : elf.value()->sections())
    if (s.addr && g->address >= s.addr && g->address + t.size <= s.addr + s.data.size())
      bytes.assign(s.data.begin() + static_cast<long>(g->address - s.addr),
                   s.data.begin() + static_cast<long>(g->address - s.addr + t.size));
  ASSERT_EQ(bytes.size(), t.size);

  // The new layout: every field plain, reordered, wider or narrower, the enum renumbered.
  TypeTable to;
  to.types.push_back(plain_int("int", TypeKind::Signed, 4));            // 0
  to.types.push_back(plain_int("unsigned long", TypeKind::Unsigned, 8));  // 1
  to.types.push_back(plain_int("double", TypeKind::Float, 8));          // 2
  Type mode{TypeKind::Enum, "enum mode", 4, 0, 0, false, {}, {{"AUTO", 10}, {"OFF", 11}, {"ON", 12}}};
  to.types.push_back(mode);                                             // 3
  Type plain{TypeKind::Struct, "struct bits", 56, -1, 0, false, {}, {}};
  plain.members = {{"e", 0, 0, 0, 1}, {"d", 8, 0, 0, 0}, {"c", 12, 0, 0, 0}, {"b", 16, 0, 0, 1},
                   {"a", 24, 0, 0, 0}, {"m", 28, 0, 0, 3}, {"s", 32, 0, 0, 2}, {"f", 40, 0, 0, 2}};
  to.types.push_back(plain);                                            // 4
  std::vector<uint8_t> out(56, 0);
  transform_value(*table, bits, bytes.data(), to, 4, out.data());
  auto at = [&](size_t offset, auto value) {
    std::memcpy(&value, out.data() + offset, sizeof value);
    return value;
  };
  EXPECT_EQ(at(0, uint64_t{}), 123456u);
  EXPECT_EQ(at(8, int32_t{}), 7);
  EXPECT_EQ(at(12, int32_t{}), -100);  // a signed bit-field, sign-extended
  EXPECT_EQ(at(16, uint64_t{}), 17u);
  EXPECT_EQ(at(24, int32_t{}), 5);
  EXPECT_EQ(at(28, int32_t{}), 10);    // AUTO, by name
  EXPECT_EQ(at(32, double{}), -3.0);   // short -> double
  EXPECT_EQ(at(40, double{}), 2.5);    // float -> double
}

// gcc 12 writes DW_AT_data_bit_offset; with DWARF 2 it writes the older DW_AT_bit_offset.
INSTANTIATE_TEST_SUITE_P(Compilers, Types, ::testing::Values("gcc -g", "gcc -gdwarf-2 -gstrict-dwarf", "clang-14 -g"),
                         [](const auto& info) {
                           const std::string p = info.param;
                           return p == "gcc -g" ? "gcc" : p.starts_with("gcc") ? "gcc_dwarf2" : "clang";
                         });

// Eight pointers live across a call: more than the callee-saved registers,
// so some are in registers and some in stack slots while it waits.
constexpr const char* kFrameSource = R"(
struct node { struct node* next; int v; };
static struct node pool[8];
__attribute__((noinline, noipa)) int wait_for(int x) { __asm__ volatile("" ::: "memory"); return x; }
__attribute__((noinline, noipa)) struct node* make(int i) { __asm__ volatile("" ::: "memory"); return &pool[i]; }
__attribute__((noinline)) int hold(void) {
  struct node *a = make(0), *b = make(1), *c = make(2), *d = make(3), *e = make(4), *f = make(5), *g = make(6),
              *h = make(7);
  int r = wait_for(1);
  return r + a->v + b->v + c->v + d->v + e->v + f->v + g->v + h->v;
}
int main(void) { return hold(); }
)";

class FramePlaces : public ::testing::TestWithParam<const char*> {
 protected:
  TempDir dir;
};

// gcc says DW_OP_fbreg on a DW_OP_call_frame_cfa frame base, clang
// DW_OP_breg7 (rsp); both keep the rest in callee-saved registers.
TEST_P(FramePlaces, LocalsArePlacedInCalleeSavedRegistersAndStackSlots) {
  auto elf = build_and_open(dir, "frame", kFrameSource, GetParam(), "-O2");
  ASSERT_TRUE(elf) << elf.error().message;
  auto table = read_type_table(*elf.value());
  ASSERT_TRUE(table) << table.error().message;
  using Kind = LocalPlace::Kind;
  std::set<std::string> named;
  size_t in_callee_saved = 0, in_memory = 0;
  const Kind memory = std::string(GetParam()).starts_with("gcc") ? Kind::AtCfaOffset : Kind::AtRegisterOffset;
  for (const auto& frame : table->frames)
    for (const auto& local : frame.locals) {
      if (local.name.size() != 1 || table->spell(local.type) != "struct node *") continue;
      named.insert(local.name);
      bool placed = false;
      for (const auto& range : local.live) {
        const LocalPlace& p = range.place;
        if (p.kind == Kind::InRegister && (p.reg == 3 || p.reg == 6 || (p.reg >= 12 && p.reg <= 15))) {
          ++in_callee_saved;
          placed = true;
        }
        if (p.kind == memory && (memory == Kind::AtCfaOffset ? p.offset < 0 : p.reg == 7 && p.offset >= 0)) {
          ++in_memory;
          placed = true;
        }
      }
      EXPECT_TRUE(placed) << local.name << " has no place over the call";
    }
  EXPECT_EQ(named.size(), 8u);
  EXPECT_GE(in_callee_saved, 5u);
  EXPECT_GE(in_memory, 1u);
}

INSTANTIATE_TEST_SUITE_P(Compilers, FramePlaces, ::testing::Values("gcc -g", "clang-14 -g -Wno-unknown-attributes"),
                         [](const auto& info) { return std::string(info.param).starts_with("gcc") ? "gcc" : "clang"; });

// A parameter whose value the frame no longer has (clang's location list
// says DW_OP_entry_value(rdi) past its last use: a debugger recomputes it in
// the caller) is not live there, like one without a location: a loop that
// used it only to start holds nothing of it while it runs.
TEST(FrameLocals, AValueOnlyTheEntryHadIsNotLiveInTheFrame) {
  constexpr const char* kLoop = R"(
#include <stdio.h>
#include <stdlib.h>
struct ctx { int n; struct state* s; };
struct state { long served; };
__attribute__((noinline)) struct state* setup(struct ctx* c) { c->s = calloc(1, sizeof *c->s); return c->s; }
__attribute__((noinline)) int serve(struct state* s) { s->served++; return getchar(); }
__attribute__((noinline)) void run(struct ctx* c) {
  struct state* s = setup(c);
  while (serve(s) != EOF) {}
}
int main(void) { struct ctx c = {0, 0}; run(&c); return 0; }
)";
  TempDir dir;
  auto elf = build_and_open(dir, "entry", kLoop, "clang-14 -g", "-O2");
  ASSERT_TRUE(elf) << elf.error().message;
  auto table = read_type_table(*elf.value());
  ASSERT_TRUE(table) << table.error().message;
  const auto symbols = elf.value()->symbols();
  uint64_t run = 0, serve_call_end = 0;
  for (const auto& s : symbols)
    if (s.name == "run") run = s.value;
  ASSERT_NE(run, 0u);
  const FrameTypes* frame = nullptr;
  for (const auto& f : table->frames)
    if (f.address == run) frame = &f;
  ASSERT_NE(frame, nullptr);
  for (const auto& local : frame->locals) {
    if (local.name != "c") continue;
    for (const auto& range : local.live) {
      serve_call_end = std::max(serve_call_end, range.end);
      EXPECT_TRUE(range.place.known()) << "c has an unknown place at [" << range.start - run << ", " << range.end - run
                                       << ")";
    }
  }
  EXPECT_NE(serve_call_end, 0u) << "c is never live: the test's binary is not what it expects";
}

// The plan carries each frame holder's locals and their places.
TEST(DataPlanJson, FrameHoldersKeepTheirLocalsPlaces) {
  DataPlan plan;
  plan.old_types.types.push_back({TypeKind::Struct, "struct node", 8, -1, 0, false, {}, {}});
  plan.old_types.types.push_back({TypeKind::Pointer, "", 8, 0, 0, false, {}, {}});
  plan.old_types.types[0].members.push_back({"next", 0, 0, 0, 1});
  plan.new_types = plan.old_types;
  plan.changes.push_back({"struct node", 0, 0, {}});
  DataPlan::FrameHolder holder{"main.c::worker", {}};
  holder.locals.push_back({"mine", 1, {{0x10, 0x40, {LocalPlace::Kind::AtCfaOffset, -1, -72}},
                                       {0x40, 0x48, {LocalPlace::Kind::InRegister, 14, 0}},
                                       {0x48, 0x50, {}}}});
  plan.frame_holders.push_back(holder);
  auto decoded = decode_data_plan(encode_data_plan(plan));
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->frame_holders.size(), 1u);
  const auto& got = decoded->frame_holders[0];
  EXPECT_EQ(got.identity, "main.c::worker");
  ASSERT_EQ(got.locals.size(), 1u);
  EXPECT_EQ(got.locals[0].name, "mine");
  EXPECT_EQ(got.locals[0].type, 1);
  ASSERT_EQ(got.locals[0].live.size(), 3u);
  EXPECT_EQ(got.locals[0].live[0].place.kind, LocalPlace::Kind::AtCfaOffset);
  EXPECT_EQ(got.locals[0].live[0].place.offset, -72);
  EXPECT_EQ(got.locals[0].live[1].place.reg, 14);
  EXPECT_FALSE(got.locals[0].live[2].place.known());
  // Waiting is only where the place is unknown.
  EXPECT_EQ(got.live(DataPlan::FrameHolder::Places::Unknown), (std::vector<std::pair<uint64_t, uint64_t>>{{0x48, 0x50}}));
  EXPECT_EQ(got.live().size(), 3u);
}

// The plan carries the user's declared edges; one outside its struct is a damaged plan.
TEST(DataPlanJson, DeclaredEdgesRoundTripAndAreChecked) {
  DataPlan plan;
  plan.old_types.types.push_back({TypeKind::Struct, "struct item", 16, -1, 0, false, {}, {}});
  plan.old_types.types.push_back({TypeKind::Struct, "struct slot", 16, -1, 0, false, {}, {}});
  plan.old_types.types.push_back({TypeKind::Signed, "long", 8, -1, 0, false, {}, {}});
  plan.new_types = plan.old_types;
  plan.changes.push_back({"struct item", 0, 0, {}});
  plan.declared_pointers.push_back({1, 8, 0, "GRAFT_POINTS_TO(slot, value, item) at a.c:3"});
  DeclaredUnionMember u;
  u.container = 1;
  u.union_offset = 8;
  u.tag_offset = 0;
  u.tag_size = 4;
  u.tag_signed = true;
  u.tag_value = -2;
  u.member_offset = 8;
  u.member_type = 2;
  u.member = "u.number";
  u.source = "GRAFT_UNION_MEMBER(slot, u, kind, -2, number) at a.c:4";
  plan.declared_union_members.push_back(u);
  auto decoded = decode_data_plan(encode_data_plan(plan));
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->declared_pointers.size(), 1u);
  EXPECT_EQ(decoded->declared_pointers[0].container, 1);
  EXPECT_EQ(decoded->declared_pointers[0].offset, 8u);
  EXPECT_EQ(decoded->declared_pointers[0].pointee, 0);
  EXPECT_EQ(decoded->declared_pointers[0].source, "GRAFT_POINTS_TO(slot, value, item) at a.c:3");
  ASSERT_EQ(decoded->declared_union_members.size(), 1u);
  const auto& got = decoded->declared_union_members[0];
  EXPECT_EQ(got.tag_value, -2);
  EXPECT_EQ(got.tag_size, 4u);
  EXPECT_TRUE(got.tag_signed);
  EXPECT_EQ(got.member_offset, 8u);
  EXPECT_EQ(got.member_type, 2);
  EXPECT_EQ(got.member, "u.number");
  plan.declared_pointers[0].offset = 12;  // its 8 bytes would end past the struct
  auto damaged = decode_data_plan(encode_data_plan(plan));
  ASSERT_FALSE(damaged);
  EXPECT_NE(damaged.error().message.find("a declared member outside its struct"), std::string::npos);
}

}  // namespace
}  // namespace graft::test
