// Data changes on a real process: every live object of a changed type is
// found from the globals and transformed at commit; what graft cannot do
// safely is refused with the target exactly as it was.
#include <gtest/gtest.h>

#include <algorithm>

#include <fstream>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>

#include "../support/harness.h"

namespace graft::test {
namespace {

class DataChanges : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(DataChanges, DiffExplainsEveryFieldChange) {
  const auto [v1, v2, patch] = build_update(dir, "data");
  const auto result = diff(dir, v1, v2, "again.graft", {"--explain"});
  for (const char* expected :
       {"struct node", "size 48 -> 56 bytes", "weight: added at offset 8 (long), set to zero",
        "count: moves from offset 8 to 32, retyped int -> long long: converted", "junk: removed, its value is dropped",
        "color: moves from offset 32 to 40, enumerators renumbered: mapped by name",
        "level: moves from offset 36 to 44, retyped unsigned int:5 -> unsigned int:7: converted",
        "score: moves from offset 40 to 48, retyped double -> float: converted", "struct tree",
        "key: moves from offset 16 to 24, retyped int -> long long: converted", "struct holder", "struct stats",
        "global   stats", "global   main.c::counter", "int -> long: new storage",
        "root     main.c::list_head", "root     table", "global   holders",
        "frames   pointers to changed data in locals whose DWARF location is known are roots: main.c::holder_thread",
        "DWARF does not say where that pointer is: main.c::grip_thread",
        "only in a register a call clobbers (a frame waiting for a call there holds nothing): main.c::holder_thread"})
    EXPECT_NE(result.out.find(expected), std::string::npos) << expected << "\n" << result.out;
}

TEST_F(DataChanges, LiveObjectsOfEveryShapeAreTransformedAndKeepTheirValues) {
  const auto [v1, v2, patch] = build_update(dir, "data");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 40"), "built");
  ASSERT_EQ(target.ask("touch"), "41");
  ASSERT_EQ(target.ask("touch"), "42");
  const std::string before = target.ask("dump");
  ASSERT_NE(before.find("counter 5"), std::string::npos) << before;
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // 40 list nodes, 40 hash-table nodes, 40 tree nodes, the retyped globals (holders, stats, counter).
  EXPECT_EQ(json["objects"].get<int>(), 40 + 40 + 40 + 3) << result.out;
  EXPECT_EQ(json["types_changed"].get<int>(), 4) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  // Every value as before, in the new layout; new fields zero, or the new initialiser (ratio).
  EXPECT_EQ(target.ask("dump"), before + " new 0 0.5");
  // State keeps counting: the function-local static, and the retyped globals in their new storage.
  EXPECT_EQ(target.ask("touch"), "43");
  const std::string after = target.ask("dump");
  EXPECT_NE(after.find("stats 8 7 counter 6"), std::string::npos) << after;
  // A data patch cannot be reverted (no inverse transformers): refused, the process stays on v2.
  auto revert = graft({"revert", std::to_string(target.pid())});
  EXPECT_EQ(revert.exit_code, 1);
  EXPECT_NE(revert.err.find("graft diff NEW OLD"), std::string::npos) << revert.err;
  EXPECT_EQ(target.ask("v"), "2");
}

TEST_F(DataChanges, ObjectsWithoutRoomToGrowMoveAndKeepTheirValues) {
  const auto v2 = build_program(dir, "data", "v2");
  const auto v3 = build_program(dir, "data", "v3");
  const auto patch = diff(dir, v2, v3, "grow.graft").patch;
  Process target({v2.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // struct tree grows from 40 to 104 bytes: each of the 10 nodes moves to a page of its own.
  EXPECT_EQ(json["objects_moved"].get<int>(), 10) << result.out;
  EXPECT_EQ(json["storage_bytes"].get<int>(), 10 * 4096) << result.out;
  EXPECT_EQ(target.ask("v"), "3");
  EXPECT_EQ(target.ask("dump"), before);
  ASSERT_EQ(target.ask("build 5"), "built");  // the moved tree takes new nodes
  EXPECT_TRUE(target.alive());
}

// What a fresh process of `binary` answers to `commands`, the last one's reply.
std::string fresh_answer(const std::filesystem::path& binary, const std::vector<std::string>& commands) {
  Process fresh({binary.string()});
  std::string reply;
  for (const auto& c : commands) reply = fresh.ask(c);
  return reply;
}

TEST_F(DataChanges, ObjectsHeldOnlyByAThreadsFrameAreFoundThroughDwarfAndTransformed) {
  const auto [v1, v2, patch] = build_update(dir, "data");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  // A thread in unchanged code, blocked in read(), whose frame alone points
  // to six nodes: four in callee-saved registers, two in stack slots.
  ASSERT_EQ(target.ask("hold"), "held");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "5000"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // Without the held nodes: 3 list nodes, 3 hash-table nodes, 3 tree nodes, the retyped globals.
  EXPECT_EQ(json["objects"].get<int>(), 3 + 3 + 3 + 3 + 6) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), before + " new 0 0.5");
  // Let go, the thread puts its nodes into the list, and v2's changed code
  // prints them: the values a v1 process that did the same has, in the new layout.
  ASSERT_EQ(target.ask("release"), "released");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v1, {"build 3", "hold", "release", "dump"}) + " new 0 0.5");
  const std::string weights = target.ask("weights");
  EXPECT_NE(weights.find("weights 776:0:0 775:0:0 774:0:0 773:0:0 772:0:0 771:0:0 2:0:0"), std::string::npos)
      << weights;
  EXPECT_TRUE(target.alive());
}

TEST_F(DataChanges, AFrameWhosePointerDwarfCannotPlaceKeepsTheUpdateWaiting) {
  const auto [v1, v2, patch] = build_update(dir, "data");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  // The pointer is inside a struct local, which DWARF describes in pieces of registers.
  ASSERT_EQ(target.ask("grip"), "gripped");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("grip_thread"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("its frame may point to changed data"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  ASSERT_EQ(target.ask("release"), "released");  // the program goes on as before
  EXPECT_EQ(target.ask("dump"), fresh_answer(v1, {"build 3", "grip", "release", "dump"}));
}

// A changed struct only frames hold (nginx's script engine: on a request
// handler's stack or from its pool, in locals only), and main, which never
// returns, holds in registers DWARF gives in pieces a struct that leads to
// it only through a member nothing sets. graft waited for main's frame
// until its timeout ("its frame may point to changed data"); graft-cc's
// records say no pointer to an engine is ever kept in memory, so main's
// frame cannot reach one, and the update lands at once.
TEST_F(DataChanges, AStructOnlyFramesHoldMakesNoOtherFrameWait) {
  const auto v1 = build_program(dir, "frameonly", "v1"), v2 = build_program(dir, "frameonly", "v2");
  const auto d = diff(dir, v1, v2, "p.graft", {"--explain"});
  EXPECT_NE(d.out.find("no global reaches struct engine, and graft-cc's records show no pointer to one is ever kept in "
                       "memory"), std::string::npos) << d.out;
  EXPECT_EQ(d.out.find("DWARF does not say where that pointer is: main"), std::string::npos) << d.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("r abc"), "1002559");
  auto result = graft({"apply", std::to_string(target.pid()), d.patch.string(), "--timeout", "5000"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("r abc"), "2002559");
  EXPECT_EQ(target.ask("c"), "2");
}

// The same pair built with graft-gcc: gcc leaves main's pointers unplaced by
// its location lists, and no records say where pointers to each struct are
// kept, so main's frame may point to the changed struct at the call it
// serves at, always. graft apply would wait until its timeout (nginx built
// with gcc did); graft diff refuses, naming main and the line, and says the
// way out.
TEST_F(DataChanges, AFrameThatNeverLeavesAndMayHoldChangedDataIsRefusedAtDiff) {
  struct UseGcc {
    std::string before = std::getenv("GRAFT_TEST_COMPILER") ? std::getenv("GRAFT_TEST_COMPILER") : "";
    UseGcc() { setenv("GRAFT_TEST_COMPILER", "gcc", 1); }
    ~UseGcc() { before.empty() ? unsetenv("GRAFT_TEST_COMPILER") : setenv("GRAFT_TEST_COMPILER", before.c_str(), 1); }
  } gcc;
  const auto v1 = build_program(dir, "frameonly", "v1"), v2 = build_program(dir, "frameonly", "v2");
  const auto patch = dir.path() / "p.graft";
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  for (const char* expected : {"main never returns (the program's main), and at the call it serves at (main.c:",
                               "its frame may point to changed data where DWARF does not say where the pointer is",
                               "Build with graft-cc", "--allow-stuck-threads main", "nothing was written"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_FALSE(std::filesystem::exists(patch));
  auto written = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--allow-stuck-threads", "main"});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  // Built with -DMODES, the loop is one of two ways main serves (redis-server's aeMain, or its
  // redis-check-aof mode): a process may run the other, so the patch is written, with a note.
  const auto m1 = build_program(dir, "frameonly", "v1", {"-DMODES"}), m2 = build_program(dir, "frameonly", "v2", {"-DMODES"});
  const auto modes = diff(dir, m1, m2, "modes.graft", {"--explain"});
  ASSERT_FALSE(modes.patch.empty());
  EXPECT_NE(modes.out.find("main.c::serve never returns (called from main, the program's main) and its frame may "
                           "point to changed data where DWARF does not say, at every call it serves at; it is one of "
                           "the ways main serves, so a process may run another"),
            std::string::npos) << modes.out;
}

// The program's mappings that overlap [start, start + size).
std::vector<std::string> mappings_within(pid_t pid, uint64_t start, uint64_t size) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);) {
    const uint64_t from = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    const uint64_t to = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (from < start + size && to > start) out.push_back(line);
  }
  return out;
}

std::string maps_of(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  return {std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>()};
}

// A refused update left a v1 process as it was: its version, values, mappings and code.
void expect_as_before(Process& target, const std::string& dump, const std::string& maps,
                      const std::filesystem::path& v1) {
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), dump);
  EXPECT_EQ(maps_of(target.pid()), maps);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

TEST_F(DataChanges, MovedObjectsAreUsedFreedAndReallocatedByTheProgram) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 40"), "built");
  ASSERT_EQ(target.ask("usable"), "24");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // 40 list items, 40 hash entries, 40 tree nodes: none fits its block, each moves to a page.
  EXPECT_EQ(json["objects"].get<int>(), 120) << result.out;
  EXPECT_EQ(json["objects_moved"].get<int>(), 120) << result.out;
  EXPECT_EQ(json["storage_bytes"].get<int>(), 120 * 4096) << result.out;
  const uint64_t storage = std::stoull(json["storage"].get<std::string>(), nullptr, 16);
  EXPECT_EQ(target.ask("v"), "2");
  // Found through the list, the heap array of buckets, the tree and a second global: values intact.
  EXPECT_EQ(target.ask("dump"), before);
  // glibc takes each moved object for an mmapped chunk of one page.
  EXPECT_EQ(target.ask("usable"), "4080");
  // Walked and changed, new fields included, as a fresh v2 process would.
  ASSERT_EQ(target.ask("bump"), "bumped");
  const std::string bumped = target.ask("dump");
  EXPECT_EQ(bumped, fresh_answer(v2, {"build 40", "bump", "dump"}));
  // realloc: a moved chunk is remapped bigger, the values go with it.
  ASSERT_EQ(target.ask("grow"), "grown");
  EXPECT_EQ(target.ask("usable"), "8176");
  EXPECT_EQ(target.ask("dump"), bumped);
  // free: every moved block is unmapped, the new storage is gone.
  ASSERT_EQ(target.ask("free"), "freed");
  EXPECT_EQ(mappings_within(target.pid(), storage, json["storage_bytes"].get<uint64_t>()), std::vector<std::string>{});
  // And the program builds anew and keeps running.
  ASSERT_EQ(target.ask("build 30"), "built");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 30", "dump"}));
  EXPECT_EQ(target.ask("v"), "2");
}

// Built without graft-cc's member facts: graft cannot know what cookie holds,
// but a void * that holds the start of an object that moves holds a pointer
// to it (or to its first member, at the same place in the new layout: one
// that is not refuses), or garbage: it follows the object (with the records
// it is followed as an item from the start: member_facts_test.cpp). It
// refused before, as redis's robj.ptr left in an embedded string's bytes did.
TEST_F(DataChanges, AnUntypedReferenceToAnObjectThatMustMoveFollowsIt) {
  const auto [v1, v2, patch] = build_update(dir, "move", {"--graft-member-facts=off"});
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("alias"), "aliased");  // a void * field points to the first list item
  const std::string value = target.ask("cookie");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_GT(nlohmann::json::parse(result.out).value("objects_moved", 0), 0) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 10", "alias", "dump"}));
  EXPECT_EQ(target.ask("cookie"), value);  // read in the new layout, through the word that followed the item
}

// A global whose struct grows gets new storage; what pointed into the old
// one follows it to the same member: a static table's pointers (redis's
// {"port", &server.port}), one the program keeps in a global, one in a heap
// object, and the table's copy in the heap (redis's configs, each copied
// from the static table). graft wrote the new storage and left them all
// behind: after the update, "s port" set the old copy and "p" never saw it
// (redis: CONFIG SET hz 55 answered OK, INFO kept saying hz:42). The revert
// brings them back.
TEST_F(DataChanges, PointersIntoAGlobalThatGetsNewStorageFollowItToTheSameMember) {
  const auto v1 = build_program(dir, "globalptr", "v1"), v2 = build_program(dir, "globalptr", "v2");
  // main sets the new cfg.id as it starts (it takes &cfg): its initial value is right.
  const auto d = diff(dir, v1, v2, "p.graft", {"--accept-static-value", "cfg.id", "--explain"});
  // holder.cookie is of unknown origin, but struct settings lives only in cfg.
  EXPECT_NE(d.out.find("untyped members (void *, an integer that may hold an address) are neither asked about nor "
                       "checked: graft-cc's records show every changed struct lives only in globals of its type"),
            std::string::npos) << d.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("s verbose 4"), "ok");
  auto result = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("p"), "2 8080 4");
  EXPECT_EQ(target.ask("l"), "4");  // the kept pointer, to verbose, which moved from offset 4 to 16
  ASSERT_EQ(target.ask("s port 9"), "ok");
  ASSERT_EQ(target.ask("s verbose 5"), "ok");
  EXPECT_EQ(target.ask("p"), "2 9 5");
  EXPECT_EQ(target.ask("h"), "9");
  EXPECT_EQ(target.ask("l"), "5");
  ASSERT_EQ(target.ask("c verbose 7"), "ok");  // through the heap copy
  EXPECT_EQ(target.ask("p"), "2 9 7");
  result = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_EQ(target.ask("s verbose 6"), "ok");
  EXPECT_EQ(target.ask("p"), "1 9 6");
  ASSERT_EQ(target.ask("c port 8"), "ok");
  EXPECT_EQ(target.ask("p"), "1 8 6");
  EXPECT_EQ(target.ask("h"), "8");
}

// A global char array the release makes shorter keeps its running string
// only if the string fits: the banner, 23 characters, does not fit 12 bytes
// and the update is refused (cut, the string would have no end: haproxy's
// version strings were read past their end so); set to a short text, it
// fits, and the update applies keeping it.
TEST_F(DataChanges, ACharArrayThatShrinksKeepsItsStringOnlyIfTheStringFits) {
  const auto v1 = build_program(dir, "shrink", "v1"), v2 = build_program(dir, "shrink", "v2");
  const auto d = diff(dir, v1, v2, "shrink.graft");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("b"), "server 1.0 build 202612");
  auto refused = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(refused.err.find('\n') == refused.err.size() - 1) << refused.err;
  EXPECT_NE(refused.err.find("global banner holds a string of 13 bytes or more, which its new type char[12] cuts: "
                             "the string would lose its end"), std::string::npos) << refused.err;
  EXPECT_EQ(target.ask("b"), "server 1.0 build 202612");
  ASSERT_EQ(target.ask("set short"), "ok");
  auto applied = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("b"), "short");
  ASSERT_EQ(target.ask("set eleven char"), "ok");  // the new code keeps to 12 bytes
  EXPECT_EQ(target.ask("b"), "eleven char");
}

// The way out the refusal above names: commit-time code that gives the
// shrunk array its new value. The running string does not fit, and the
// update lands all the same (the code writes the array after the migration);
// before, the check refused it before that code could run (haproxy 3.4.0's
// version strings).
TEST_F(DataChanges, ACharArrayThatShrinksTakesTheValueCommitTimeCodeGivesIt) {
  const auto v1 = build_program(dir, "shrink", "v1"), v2 = build_program(dir, "shrink", "v2");
  const auto code = (programs_dir() / "shrink" / "update" / "banner.c").string();
  const auto d = diff(dir, v1, v2, "shrink.graft", {"--transform", code});
  Process target({v1.string()});
  ASSERT_EQ(target.ask("b"), "server 1.0 build 202612");  // 23 bytes: not kept by char[12]
  auto applied = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("b"), "server 2.0");
  ASSERT_EQ(target.ask("set eleven char"), "ok");
  EXPECT_EQ(target.ask("b"), "eleven char");
}

// Statics that share one section, in another order in the new release: the
// new code counts each counter where the running program keeps it (the
// assembler names them by section offset, and the running binary's offsets
// are the old ones).
TEST_F(DataChanges, StaticsSharingASectionAreEachReachedWhereTheRunningProgramKeepsThem) {
  const auto v1 = build_program(dir, "sections", "v1"), v2 = build_program(dir, "sections", "v2");
  const auto d = diff(dir, v1, v2, "sections.graft");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("a"), "a=101 b=200");
  ASSERT_EQ(target.ask("b"), "a=101 b=201");
  auto applied = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("c"), "v2 a=101 b=201 z=7");
  EXPECT_EQ(target.ask("a"), "v2 a=102 b=201 z=7");
  EXPECT_EQ(target.ask("b"), "v2 a=102 b=202 z=7");
  EXPECT_EQ(target.ask("z"), "v2 a=102 b=202 z=8");
  auto reverted = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(target.ask("c"), "a=102 b=202");
}

// A thread waits in read() into cfg.name, in code no version changes: its
// register holds the old address, which graft cannot map to a member nor
// rewrite, and the kernel would write the name into the old copy. Refused,
// naming the register and the member; once the read is done, the update
// lands and the name read before it is kept.
TEST_F(DataChanges, AThreadHoldingAnAddressInsideAMovedGlobalInARegisterRefusesUntilItLetsGo) {
  const auto v1 = build_program(dir, "globalptr", "v1"), v2 = build_program(dir, "globalptr", "v2");
  const auto d = diff(dir, v1, v2, "p.graft", {"--accept-static-value", "cfg.id"});
  Process target({v1.string()});
  ASSERT_EQ(target.ask("w"), "waiting");
  const std::string maps = maps_of(target.pid());
  auto result = graft({"apply", std::to_string(target.pid()), d.patch.string(), "--timeout", "3000"});
  EXPECT_EQ(result.exit_code, 1);
  for (const char* expected : {"holds in r", "the address of global cfg.name", "which the patch moves to new storage",
                               "graft does not rewrite a register that points into a moved global", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  EXPECT_EQ(maps_of(target.pid()), maps);
  EXPECT_EQ(target.ask("n graft"), "named graft");
  result = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("p"), "2 8080 0");
  ASSERT_EQ(target.ask("w"), "waiting");  // the new code's thread reads into the new storage
  EXPECT_EQ(target.ask("n again"), "named again");
}

// The new member goes first: the table's &cfg.port is also &cfg, and the
// two go to different places in the new layout. A word of the table does
// not say which it is, so the update is refused, naming it, and nothing changes.
TEST_F(DataChanges, AnAddressThatIsBothAGlobalAndItsFirstMemberWhichPartRefusesNamingIt) {
  const auto v1 = build_program(dir, "globalptr", "v1"), v3 = build_program(dir, "globalptr", "v3");
  // main sets the new cfg.id as it starts (it takes &cfg): its initial value is right.
  const auto d = diff(dir, v1, v3, "p.graft", {"--accept-static-value", "cfg.id"});
  Process target({v1.string()});
  const std::string maps = maps_of(target.pid());
  auto result = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  for (const char* expected : {"options+8 (0x", "points to global cfg.port (int) at 0x", "new storage",
                               "the address of both struct settings and of its member port, which are 8 bytes apart",
                               "keeping that member first", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_EQ(target.ask("p"), "1 8080 0");
  EXPECT_EQ(maps_of(target.pid()), maps);
}

TEST_F(DataChanges, AnAddressOnAThreadStackFollowsTheObjectThatMoves) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("hold"), "held");  // a thread keeps the first item's address in an untyped local, blocked in read()
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("v"), "2");
  // The word on its stack was rewritten with the list's own pointer: both name the moved item.
  EXPECT_EQ(target.ask("release"), "the first item");
  EXPECT_EQ(target.ask("usable"), "4080");
}

// A thread waiting at the entry of a replaced function holds its argument,
// a pointer to an object that moves, in rdi: DWARF says so, and the register
// is the thread's own, so the commit rewrites it (httpd's workers waiting at
// conn_event with a connection that moves).
TEST_F(DataChanges, AnArgumentRegisterOfAThreadAtAReplacedEntryFollowsTheObjectThatMoves) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("touch"), "touching");  // calls touch(items) without end
  // A stop that finds the thread just after the call, where rdi still holds
  // the item but nothing says it is dead, refuses (nothing changed): try again.
  CommandResult result;
  for (int attempt = 0; attempt < 5; ++attempt) {
    result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
    if (result.exit_code == 0) break;
    ASSERT_NE(result.err.find("holds in a register"), std::string::npos) << result.err;
  }
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_GT(nlohmann::json::parse(result.out)["objects_moved"].get<int>(), 0);
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("touched"), "stale 0");  // every call got the list's own (rewritten) pointer
  EXPECT_EQ(target.ask("usable"), "4080");
  EXPECT_EQ(target.ask("bump"), "bumped");
  EXPECT_EQ(target.ask("touched"), "stale 0");
}

// A caller's local in a callee-saved register that no frame inside it has
// saved yet is still in the thread's register: the unwinder says so
// (StackFrame::registers_in_thread), and the commit rewrites that register
// (httpd v4 -> v5: a worker at conn_read's entry, conn_event's connection in rbx).
TEST_F(DataChanges, AnObjectThatMustMoveHeldInACallersRegisterFollowsIt) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("grasp"), "held");  // a struct item * local in a callee-saved register, blocked in read()
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("v"), "2");
  // The thread's register now names the moved item, as the list does.
  EXPECT_EQ(target.ask("release"), "the first item");
  EXPECT_EQ(target.ask("usable"), "4080");
}

TEST_F(DataChanges, AnAddressInsideAnObjectThatMustMoveOnAThreadStackRefusesAndNothingChanges) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("pin"), "held");  // a thread keeps the address of a field of the first item, blocked in read()
  const std::string before = target.ask("dump");
  const std::string maps = maps_of(target.pid());
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  for (const char* expected : {"thread ", "on its stack at 0x", "an address inside the struct item at",
                               "graft does not know that word's type", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  expect_as_before(target, before, maps, v1);
  EXPECT_EQ(target.ask("release"), "another address");
}

// Transformers written by the user (graft diff --transform FILE.c), run in the target at the commit.
std::string transformer(const std::string& name) {
  return (programs_dir() / "data" / "transformers" / (name + ".c")).string();
}

// The patch from data v1 to v2 with the user's transformers in `file`.
std::filesystem::path diff_with(const TempDir& dir, const std::filesystem::path& v1, const std::filesystem::path& v2,
                                const std::string& file) {
  return diff(dir, v1, v2, std::filesystem::path(file).stem().string() + ".graft", {"--transform", file}).patch;
}

// Data v1 and v2, and the patch between them with the transformers of tests/programs/data/transformers/<name>.c.
Update update_with(const TempDir& dir, const std::string& name) {
  Update update{build_program(dir, "data", "v1"), build_program(dir, "data", "v2"), {}};
  update.patch = diff_with(dir, update.v1, update.v2, transformer(name));
  return update;
}

std::string tracer_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("TracerPid:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 10));
  return "";
}

TEST_F(DataChanges, TransformHeaderDeclaresTheOldLayoutsByteForByte) {
  const auto v1 = build_program(dir, "data", "v1");
  const auto v2 = build_program(dir, "data", "v2");
  const auto header = dir.path() / "graft_old_types.h";
  auto result = graft({"diff", v1.string(), v2.string(), "--transform-header", header.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::ifstream in(header);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* expected :
       {"struct graft_old_node {", "unsigned int flags : 3;", "unsigned int level : 5;",
        "_Static_assert(sizeof(struct graft_old_node) == 48", "__builtin_offsetof(struct graft_old_node, score) == 40",
        "struct graft_old_holder {", "struct graft_old_node inner;",
        "void graft_transform__node(const struct graft_old_node *from, struct node *to)", "do not call malloc"})
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  EXPECT_NE(text.find("struct graft_old_point {"), std::string::npos);  // held by value in struct tree: declared too
  // Every static assertion holds: the declared layout is the old build's, byte for byte.
  auto compiled = run({(bin_dir() / "graft-cc").string(), "-fsyntax-only", "-x", "c", header.string()});
  EXPECT_EQ(compiled.exit_code, 0) << compiled.err;
  // --explain says which transformer runs for each changed struct, and the signature to write.
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", transformer("compute")});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  for (const char* expected :
       {"transformer: the user's graft_transform__node", "transformer: the user's graft_transform__tree",
        "transformer: the generated default", "GRAFT_TRANSFORM(holder, from, to) { ... }",
        "void graft_transform__holder(const struct graft_old_holder *from, struct holder *to)",
        "add      graft_transform__node", "transformer for struct node, written by the user (compute.c)"})
    EXPECT_NE(explain.out.find(expected), std::string::npos) << expected << "\n" << explain.out;
}

TEST_F(DataChanges, UserTransformersComputeNewFieldsAndOverrideDefaults) {
  const auto [v1, v2, patch] = update_with(dir, "compute");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  ASSERT_EQ(target.ask("touch"), "41");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // 3 list nodes, 3 table nodes, 3 trees, 4 nodes inside the global holders, the global stats.
  EXPECT_EQ(json["user_transformed"].get<int>(), 3 + 3 + 3 + 4 + 1) << result.out;
  EXPECT_EQ(json["user_batches"].get<int>(), 3) << result.out;  // one per transformer
  EXPECT_EQ(target.ask("v"), "2");
  // weight = count * 10 + level and spare = junk + flags, from old fields (junk is gone in v2); ratio = misses / hits.
  EXPECT_EQ(target.ask("weights"),
            "weights 2:22:101 1:11:100 0:0:99 i200:2008:99 i201:2019:100 i202:2030:101 i203:2041:102 ratio 1.17");
  // Overridden defaults: every score doubled, every tree key + 1000; the rest as the default made it.
  EXPECT_EQ(target.ask("dump"),
            "list l:2:n2:blue:2:2:6.0 l:1:n1:green:1:1:3.0 l:0:n0:red:0:0:0.0 table h:100:n100:green:4:4:300.0 "
            "h:101:n101:blue:5:5:303.0 h:102:n102:red:6:6:306.0 tree t1000:0:0 t1838:838:-838 t1919:919:-919 "
            "holders 1000:0:0 i:200:n200:blue:0:8:600.0 1001:1:2 i:201:n201:red:1:9:603.0 1002:2:4 "
            "i:202:n202:green:2:10:606.0 1003:3:6 i:203:n203:blue:3:11:609.0 corners 1 2 3 4 stats 6 7 counter 4 "
            "new 333 1.2");
  EXPECT_EQ(target.ask("touch"), "42");
}

TEST_F(DataChanges, AFaultingTransformerRollsBackAndTheProgramRunsOnTheOldVersion) {
  const auto [v1, v2, faulting] = update_with(dir, "fault");  // dereferences NULL at each list's end
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  ASSERT_EQ(target.ask("touch"), "41");
  ASSERT_EQ(target.ask("spin 3"), "spinning");  // busy threads, stopped wherever they are while the transformer runs
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), faulting.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("fault.c: the transformer for struct node (graft_transform__node) faulted with SIGSEGV"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("on the object at 0x"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("nothing was changed"), std::string::npos) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  // The old version answers, every value as it was, its code the binary's own, no patch recorded, not traced.
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(tracer_of(target.pid()), "0");
  auto status = graft({"status", std::to_string(target.pid())});
  EXPECT_NE(status.out.find("no graft patches applied"), std::string::npos) << status.out;
  EXPECT_EQ(target.ask("touch"), "42");  // state goes on counting
  const long spun = std::stol(target.ask("spins"));
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::stol(target.ask("spins")) == spun && std::chrono::steady_clock::now() < until;) {
  }
  // The other threads run on. (Their count is a racy ++ from three threads:
  // one stopped between its load and its store may set it back, so it moves,
  // not necessarily up.)
  EXPECT_NE(std::stol(target.ask("spins")), spun);
  // A good patch still applies afterwards.
  const auto good = diff_with(dir, v1, v2, transformer("compute"));
  auto applied = graft({"apply", std::to_string(target.pid()), good.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("weights"),
            "weights 2:22:101 1:11:100 0:0:99 i200:2008:99 i201:2019:100 i202:2030:101 i203:2041:102 ratio 1.00");
}

TEST_F(DataChanges, ATransformerThatNeverFinishesIsStoppedByTheTimeLimit) {
  const auto [v1, v2, patch] = update_with(dir, "loop");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--transformer-timeout", "200"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("the transformer for struct node (graft_transform__node) did not finish within 200 ms"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("nothing was changed"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

TEST_F(DataChanges, TransformerFilesThatCannotWorkAreRefused) {
  const auto v1 = build_program(dir, "data", "v1");
  const auto v2 = build_program(dir, "data", "v2");
  auto refused = [&](const std::string& file) {
    auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--transform", file});
    EXPECT_EQ(result.exit_code, 1) << file;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "refused.graft"));
    return result.err;
  };
  auto write = [&](const std::string& name, const std::string& text) {
    const auto path = dir.path() / name;
    std::ofstream(path) << "#include <graft/graft.h>\n#include \"graft_old_types.h\"\n#include \"types.h\"\n" << text;
    return path.string();
  };
  std::string err = refused(transformer("unchanged"));
  EXPECT_NE(err.find("unchanged.c:7: a transformer for struct point, which did not change"), std::string::npos) << err;
  EXPECT_NE(err.find("(holder, node, stats, tree)"), std::string::npos) << err;
  err = refused(transformer("broken"));
  EXPECT_NE(err.find("cannot compile transformer file"), std::string::npos) << err;
  EXPECT_NE(err.find("broken.c:7:39: error: no member named 'wieght' in 'struct node'"), std::string::npos) << err;
  err = refused(write("nothing.c", "GRAFT_TRANSFORM(node, from, to);\n"));
  EXPECT_NE(err.find("nothing.c:4: GRAFT_TRANSFORM(node, ...) has no body (a declaration only?)"), std::string::npos)
      << err;
  err = refused(write("external.c", "long frobnicate(long);\nGRAFT_TRANSFORM(node, from, to) { to->weight = frobnicate(from->count); }\n"));
  EXPECT_NE(err.find("uses frobnicate, which neither the program nor the libraries it imports define"), std::string::npos) << err;
  err = refused(write("global.c", "int seen;\nGRAFT_TRANSFORM(node, from, to) { seen++; to->weight = 1; }\n"));
  EXPECT_NE(err.find("defines the global seen: make it static"), std::string::npos) << err;
  err = refused(write("unknown.c", "GRAFT_TRANSFORM(nosuch, from, to) { }\n"));
  EXPECT_NE(err.find("a transformer for struct nosuch, which is no struct of the program"), std::string::npos) << err;
}


// What the types do not say, declared in the --transform file (graft.h's directives).
std::string directives(const std::string& name) {
  return (programs_dir() / "annot" / "directives" / (name + ".c")).string();
}

struct Annotated {
  std::filesystem::path v1, v2, patch;
};
Annotated annotated_update(const TempDir& dir, const std::string& name) {
  Annotated update{build_program(dir, "annot", "v1"), build_program(dir, "annot", "v2"), {}};
  update.patch = diff(dir, update.v1, update.v2, name + ".graft", {"--transform", directives(name)}).patch;
  return update;
}

TEST_F(DataChanges, DeclaredVoidPointersIntegersAndUnionsAreFollowedTransformedAndRewritten) {
  const auto [v1, v2, patch] = annotated_update(dir, "all");
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", directives("all")});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  for (const char* expected :
       {"declared GRAFT_POINTS_TO(slot, value, item) at ", "all.c:6: followed like a struct item *",
        "declared GRAFT_POINTS_TO(stash, handle, blob) at ",
        "all.c:11: while the tag is 2, u.blob (struct blob *) is the live member", "root     stash"})
    EXPECT_NE(explain.out.find(expected), std::string::npos) << expected << "\n" << explain.out;
  EXPECT_EQ(explain.out.find("no global reaches"), std::string::npos) << explain.out;

  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("usable"), "24");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  // 10 items behind the hash table's void * values (they grow within their blocks), 3 blobs behind the
  // union's live members, 2 behind stash's void * and integer: the 5 blobs outgrow their blocks and move.
  EXPECT_EQ(json["objects"].get<int>(), 15) << result.out;
  EXPECT_EQ(json["objects_moved"].get<int>(), 5) << result.out;
  EXPECT_EQ(json["storage_bytes"].get<int>(), 5 * 4096) << result.out;
  const uint64_t storage = std::stoull(json["storage"].get<std::string>(), nullptr, 16);
  EXPECT_EQ(target.ask("v"), "2");
  // Every value where the new code reads it, as a fresh v2 process has it; the untyped slots name the moved blobs.
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 10", "dump"}));
  EXPECT_EQ(target.ask("usable"), "4080");
  ASSERT_EQ(target.ask("bump"), "bumped");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 10", "bump", "dump"}));
  // The program frees what moved through its void *, integer and union: the new storage is gone.
  ASSERT_EQ(target.ask("free"), "freed");
  EXPECT_EQ(mappings_within(target.pid(), storage, json["storage_bytes"].get<uint64_t>()), std::vector<std::string>{});
  ASSERT_EQ(target.ask("build 3"), "built");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 3", "dump"}));
}

// A union with no integer or enum member beside it (its live member chosen
// by function pointers): no tag can be declared, so the refusal offers only
// GRAFT_OPAQUE on the member that leads to it.
TEST_F(DataChanges, AUnionNoMemberCanTagIsRefusedOfferingGraftOpaque) {
  const auto v1 = build_program(dir, "tagless", "v1");
  const auto v2 = build_program(dir, "tagless", "v2");
  auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "p.graft").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;  // one line
  EXPECT_NE(result.err.find("struct io.u is a union holding data of a changed type, and struct io has no integer or "
                            "enum member that could say which member is live"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("GRAFT_OPAQUE(io, u) if it never holds the changed data"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("GRAFT_UNION_MEMBER"), std::string::npos) << result.err;
  // The directive it offers is one graft diff takes (here the claim is the
  // user's; this program's union does hold the changed struct, so only the
  // diff is made).
  const auto directives = dir.path() / "tagless.c";
  std::ofstream(directives) << "#include <graft/graft.h>\nGRAFT_OPAQUE(io, u);\n";
  result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "p.graft").string(), "--transform",
                  directives.string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  // A member that is neither a pointer nor a union is refused in one line.
  std::ofstream(directives) << "#include <graft/graft.h>\nGRAFT_OPAQUE(item, key);\n";
  result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "p.graft").string(), "--transform",
                  directives.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("struct item.key is int, neither a pointer nor a union"), std::string::npos) << result.err;
}

// Built without graft-cc's member facts (as a build from before them): the
// void * members are checked at the commit (with them, graft-cc's records
// settle both: tests/integration/member_facts_test.cpp).
TEST_F(DataChanges, WithoutDirectivesAUnionOrAVoidPointerToUnreachedDataRefusesNamingTheDirectiveToWrite) {
  const auto v1 = build_program(dir, "annot", "v1", {"--graft-member-facts=off"});
  const auto v2 = build_program(dir, "annot", "v2", {"--graft-member-facts=off"});
  const auto refused = dir.path() / "refused.graft";
  auto result = graft({"diff", v1.string(), v2.string(), "-o", refused.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("struct cell.u is a union holding data of a changed type: graft cannot tell which member "
                            "is live; declare it in the --transform file, one line per tag value: "
                            "GRAFT_UNION_MEMBER(cell, u, TAG_FIELD, TAG_VALUE, MEMBER), or, if no member says "
                            "which is live, GRAFT_OPAQUE(cell, u) if it never holds the changed data;"),
            std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(refused));

  // The union declared, the void * left unsaid: the items are not reached, and --explain says what to write.
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", directives("unions")});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  for (const char* expected : {"no global reaches struct item through typed or declared pointers",
                               "GRAFT_POINTS_TO(slot, value, item);", "GRAFT_POINTS_TO(stash, blob, item);",
                               "unions.c:8: while the tag is 2, u.blob (struct blob *) is the live member"})
    EXPECT_NE(explain.out.find(expected), std::string::npos) << expected << "\n" << explain.out;
  const auto partial = dir.path() / "unions.graft";
  ASSERT_EQ(graft({"diff", v1.string(), v2.string(), "-o", partial.string(), "--transform", directives("unions")}).exit_code, 0);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  const std::string before = target.ask("dump");
  const std::string maps = maps_of(target.pid());
  // Undeclared void * members hold heap blocks no typed pointer reached, of
  // a size a changed struct could have: the update is refused, nothing
  // changed, and every such member is named at once, in one line, each with
  // the directives that settle it (not one per attempt).
  result = graft({"apply", std::to_string(target.pid()), partial.string(), "--json"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  for (const char* expected :
       {"2 void * members hold heap blocks", "struct slot.value at ", "struct stash.blob at ",
        "GRAFT_POINTS_TO(slot, value, STRUCT); or, if it never holds a changed struct, GRAFT_OPAQUE(slot, value);",
        "GRAFT_POINTS_TO(stash, blob, STRUCT); or, if it never holds a changed struct, GRAFT_OPAQUE(stash, blob); "
        "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  expect_as_before(target, before, maps, v1);
  // Declared opaque (here wrongly), the void * members are the user's word:
  // only the blobs behind the union are transformed.
  const auto opaque = dir.path() / "opaque.graft";
  ASSERT_EQ(graft({"diff", v1.string(), v2.string(), "-o", opaque.string(), "--transform", directives("opaque")}).exit_code, 0);
  result = graft({"apply", std::to_string(target.pid()), opaque.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["objects"].get<int>(), 3) << result.out;
}

TEST_F(DataChanges, AUnionTagNoDirectiveNamesRefusesTheUpdateAndNothingChanges) {
  const auto [v1, v2, patch] = annotated_update(dir, "all");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 4"), "built");
  ASSERT_EQ(target.ask("odd"), "odd");  // cell 2's tag: KIND_ODD, which no GRAFT_UNION_MEMBER names
  const std::string before = target.ask("dump");
  const std::string maps = maps_of(target.pid());
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  for (const char* expected : {"the struct cell at 0x", "its tag holds 3, a value no GRAFT_UNION_MEMBER names",
                               "declare it for this value too", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  expect_as_before(target, before, maps, v1);
}

// An intrusive list (a struct list_head embedded in each item, the head a
// global, container_of in the code): typed, the traversal sees only list_head
// pointers. Declared with GRAFT_POINTS_INTO, every item is found through its
// link, the head recognised as inside no item, and transformed in place.
// Undeclared, graft-cc's records show pointers into the items are kept (as
// list_head pointers, &it->link): refused, naming the directive (the graft
// before took the items for frames-only and wrote a patch that left them in
// the old layout). A release that moves the link inside the item (v3):
// declared, every link pointer follows it (the graft before wrote a patch
// that left them at the old offset and the new code read garbage keys).
TEST_F(DataChanges, AnIntrusiveListDeclaredWithPointsIntoIsTransformed) {
  const std::vector<std::string> common = {"-I" + (programs_dir() / "intrusive" / "common").string()};
  const auto v1 = build_program(dir, "intrusive", "v1", common);
  const auto v2 = build_program(dir, "intrusive", "v2", common);
  const auto list = (programs_dir() / "intrusive" / "directives" / "list.c").string();
  const auto patch = dir.path() / "list.graft";
  auto undeclared = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "undeclared.graft").string()});
  if (test_compiler() == "gcc") {  // no records: the frames-only assumption, said in a note
    EXPECT_EQ(undeclared.exit_code, 0) << undeclared.err;
  } else {
    EXPECT_EQ(undeclared.exit_code, 1);
    for (const char* expected : {"graft cannot find the live instances of struct item (a pointer to its struct "
                                 "list_head (whose address build takes) may be kept: stored in build",
                                 "GRAFT_POINTS_INTO(STRUCT, FIELD, item, MEMBER)", "nothing was written"})
      EXPECT_NE(undeclared.err.find(expected), std::string::npos) << expected << "\n" << undeclared.err;
  }
  {
    const auto moved = dir.path() / "moved.graft";
    auto made = graft({"diff", v1.string(), build_program(dir, "intrusive", "v3", common).string(), "-o",
                       moved.string(), "--transform", list, "--explain"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_NE(made.out.find("revert   the data goes back by the inverse plan"), std::string::npos) << made.out;
    Process target({v1.string()});
    ASSERT_EQ(target.ask("build 5"), "built");
    const std::string before = target.ask("dump");
    auto applied = graft({"apply", std::to_string(target.pid()), moved.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 5) << applied.out;
    EXPECT_EQ(target.ask("v"), "3");
    EXPECT_EQ(target.ask("dump"), before);  // every link found where the new layout has it
    ASSERT_EQ(target.ask("build 1"), "built");
    auto reverted = graft({"revert", std::to_string(target.pid())});
    ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
    EXPECT_EQ(target.ask("v"), "1");
    EXPECT_NE(target.ask("dump").find(" 4:40 0:0 back 0 40"), std::string::npos);
  }
  auto diff = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", list, "--explain"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_NE(diff.out.find("GRAFT_POINTS_INTO(list_head, next, item, link)"), std::string::npos) << diff.out;

  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 12"), "built");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["objects"].get<int>(), 12) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), before);  // the new code reads every value at its new offset
  ASSERT_EQ(target.ask("build 2"), "built");
  EXPECT_NE(target.ask("dump").find(" 11:110 0:0 1:10 back 10 0 110"), std::string::npos);

  // A member that is not the container's type is refused at diff.
  const auto wrong = (programs_dir() / "intrusive" / "directives" / "wrong.c").string();
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "wrong.graft").string(), "--transform", wrong});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("not struct list_head"), std::string::npos) << refused.err;
}

// A struct the release renames (beanstalkd 1.12: struct tube -> struct
// Tube), reached through a typed pointer. graft pairs old and new structs by
// name; a pointer of a struct both versions name (conn.use) that now points
// to a struct of another name pairs the two, when the old name is gone from
// the new version and the new one was not in the old: renamed and grown,
// the live tubes are converted member by member (before, they kept the old
// layout under the new code, which read 0 for the jobs); renamed only, they
// read alike. Where the old name stays in the new version, no such pairing
// holds: refused. A transformer of the user's for a renamed struct is
// refused too (not supported yet).
TEST_F(DataChanges, AStructTheReleaseRenamesIsConvertedUnderItsNewName) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "renamed" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "renamed", "v1", flags);
  for (const auto& [version, answer] : {std::pair{"v2", "2"}, std::pair{"v3", "3"}}) {
    const auto made = diff(dir, v1, build_program(dir, "renamed", version, flags), std::string(version) + ".graft",
                           {"--explain"});
    if (std::string(version) == "v2") {
      EXPECT_NE(made.out.find("renamed struct Tube in the new version"), std::string::npos) << made.out;
    }
    Process target({v1.string()});
    ASSERT_EQ(target.ask("use 7 70"), "used");
    auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(target.ask("v"), answer);
    EXPECT_EQ(target.ask("r"), "7 70");
    ASSERT_EQ(target.ask("use 8 80"), "used");
    EXPECT_EQ(target.ask("r"), "8 80");
    // The way back pairs the names the other way.
    auto reverted = graft({"revert", std::to_string(target.pid())});
    ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
    EXPECT_EQ(target.ask("v"), "1");
    EXPECT_EQ(target.ask("r"), "8 80");
  }
  const auto v4 = build_program(dir, "renamed", "v4", flags);
  const auto patch = dir.path() / "v4.graft";
  auto refused = graft({"diff", v1.string(), v4.string(), "-o", patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  for (const char* expected : {"struct conn.use pointed to a struct tube and now points to a struct Tube, whose layout "
                               "differs (16 -> 24 bytes), and graft cannot pair them as a renamed struct",
                               "needs a restart", "nothing was written"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_FALSE(std::filesystem::exists(patch));

  // A transformer of the user's goes by the new name; `from` is the old layout (struct tube's).
  const auto transformer = dir.path() / "tube.c";
  std::ofstream(transformer) << "#include <graft/graft.h>\nstruct Tube { int id; long ready; long jobs; };\n"
                                "GRAFT_TRANSFORM(Tube, from, to) { to->ready = 1; to->jobs = from->jobs + from->id; }\n";
  const auto v2 = build_program(dir, "renamed", "v2", flags);
  auto own = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", transformer.string()});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  {
    Process target({v1.string()});
    ASSERT_EQ(target.ask("use 7 70"), "used");
    auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["user_transformed"].get<int>(), 1) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    EXPECT_EQ(target.ask("r"), "7 77");
  }
  const auto by_old_name = dir.path() / "old_name.c";
  std::ofstream(by_old_name) << "#include <graft/graft.h>\nstruct tube { int id; long jobs; };\n"
                                "GRAFT_TRANSFORM(tube, from, to) { to->jobs = 1; }\n";
  auto old_named = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "old.graft").string(), "--transform",
                          by_old_name.string()});
  EXPECT_EQ(old_named.exit_code, 1);
  EXPECT_NE(old_named.err.find("a transformer for struct tube, which the new version renames struct Tube: name it by "
                               "its new name, GRAFT_TRANSFORM(Tube, from, to)"),
            std::string::npos) << old_named.err;
}

// epoll's data words are kept by the kernel and handed back as given
// (tests/programs/kernelref). graft-cc records what the program stores into
// them (here, only struct conn *): each watch's word is followed like a
// typed pointer, so a connection only the kernel remembers is found and
// transformed (before, it was left in the old layout under the new code, as
// beanstalkd 1.11 -> 1.12's idle connections were). Where the word must
// change (the listener inside the server, which gets new storage; a
// connection that must move, -DNO_ROOM), graft sets it again at the commit
// (EPOLL_CTL_MOD in a stopped thread): the new code is handed the new
// address, and the revert sets it back. Where it cannot, the update is
// refused and the process runs on unchanged: the descriptor the watch was
// registered under is closed; another process shares the instance; the
// records cannot tell what the words hold (-DUNRECORDED_DATA: copied in by
// memcpy) and one points into memory no typed pointer reached, which may be
// a changed struct graft cannot see. A one-shot watch that fired is no
// obstacle: the kernel hands its word back no more.
TEST_F(DataChanges, WhatTheKernelRemembersIsFollowedAndSetAgainWhereItMustChange) {
  auto flags = [](const std::string& define) {
    std::vector<std::string> out = {"-I" + (programs_dir() / "kernelref" / "common").string(),
                                    "-I" + (programs_dir() / "shared").string()};
    if (!define.empty()) out.push_back(define);
    return out;
  };
  const auto [v1, v2, patch] = build_update(dir, "kernelref", flags(""));
  const auto no_room = build_update(dir, "kernelref", flags("-DNO_ROOM"));
  // graft-gcc's builds carry no records: there, the hidden one is refused as unrecorded data is.
  const bool recorded = test_compiler() != "gcc";
  if (recorded) {
    Process target({v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("hide"), "hidden");
    ASSERT_EQ(target.ask("ping"), "pinged");
    ASSERT_EQ(target.ask("poll"), "2 ready, served 2");
    auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 3) << applied.out;  // with srv's listener
    EXPECT_EQ(target.ask("v"), "2");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), "2 ready, served 4");  // 3 if the hidden one kept its old layout
    EXPECT_EQ(target.ask("r"), "2");
  }
  {
    // The listener's word points into srv's old storage: set to its new storage.
    Process target({v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("listen"), "listening");
    auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["epoll_words"].get<int>(), 1) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), "2 ready, served 2");
    EXPECT_EQ(target.ask("l"), "1");  // 0 if the word still led to the old storage
    auto reverted = graft({"revert", std::to_string(target.pid())});
    ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
    EXPECT_EQ(target.ask("v"), "1");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), "2 ready, served 4");
    EXPECT_EQ(target.ask("l"), "2");
  }
  {
    // Each connection must move (no room): its word is set to where it went.
    Process target({no_room.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("open"), "opened");
    if (recorded) {
      ASSERT_EQ(target.ask("hide"), "hidden");
    }
    auto applied = graft({"apply", std::to_string(target.pid()), no_room.patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects_moved"].get<int>(), recorded ? 3 : 2) << applied.out;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["epoll_words"].get<int>(), recorded ? 3 : 2) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), recorded ? "3 ready, served 3" : "2 ready, served 2");
    EXPECT_EQ(target.ask("r"), "1 1");  // 0 0 if the words still led to the old objects
    auto reverted = graft({"revert", std::to_string(target.pid())});
    ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
    EXPECT_EQ(target.ask("v"), "1");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), recorded ? "3 ready, served 6" : "2 ready, served 4");
    EXPECT_EQ(target.ask("r"), "2 2");
  }
  if (recorded) {
    // A fired one-shot watch's word is dead: it does not refuse the update the unrecorded words would.
    const auto unrecorded = build_update(dir, "kernelref", flags("-DUNRECORDED_DATA"));
    Process target({unrecorded.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("once"), "1 ready, served 1");
    auto applied = graft({"apply", std::to_string(target.pid()), unrecorded.patch.string()});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(target.ask("v"), "2");
  }
  struct Refusal {
    std::string define, command, ready;  // the build, what makes the refusal, what a ping then makes ready
    std::vector<std::string> expected;
  };
  {
    // The descriptor the watch was registered under is closed: the kernel
    // refuses to set the word, at the commit, and the update is rolled back.
    Process target({no_room.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("orphan"), "orphaned");
    auto refused = graft({"apply", std::to_string(target.pid()), no_room.patch.string()});
    EXPECT_EQ(refused.exit_code, 1) << refused.out;
    for (const char* expected : {"cannot set the data of fd ", "Bad file descriptor (the descriptor it was registered "
                                 "under was closed, or reused, since", "the update was rolled back"})
      EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
    EXPECT_EQ(target.ask("v"), "1");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), "2 ready, served 2");
    EXPECT_EQ(target.ask("r"), "1 1");
  }
  {
    // io_uring keeps its requests' user_data where graft cannot read it all: objects that move are refused.
    Process target({no_room.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    if (target.ask("ring") == "ring") {
      auto refused = graft({"apply", std::to_string(target.pid()), no_room.patch.string()});
      EXPECT_EQ(refused.exit_code, 1) << refused.out;
      EXPECT_NE(refused.err.find("has an io_uring instance (fd "), std::string::npos) << refused.err;
      EXPECT_NE(refused.err.find("1 objects move: a request in flight may hold an address"), std::string::npos)
          << refused.err;
      EXPECT_EQ(target.ask("v"), "1");
      ASSERT_EQ(target.ask("ping"), "pinged");
      EXPECT_EQ(target.ask("poll"), "1 ready, served 1");
    } else {
      std::cerr << "note: this kernel makes no io_uring instance; its refusal is not tested here\n";
    }
  }
  const std::vector<Refusal> refusals = {
      {"-DNO_ROOM", "share", "1 ready, served 1",
       {"which moves, and graft cannot set the word the kernel keeps: process ",
        " has the epoll instance open too, and would be handed the new word"}},
      {recorded ? "-DUNRECORDED_DATA" : "", "hide", "2 ready, served 2",
       {"writable memory no typed pointer reached: it may be a changed struct graft cannot see (only the kernel "
        "remembers it", "graft cannot tell where the word should point in the new layout"}},
  };
  for (const auto& r : refusals) {
    const auto update = r.define.empty() ? Update{v1, v2, patch} : build_update(dir, "kernelref", flags(r.define));
    Process target({update.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_NE(target.ask(r.command), "?");
    auto refused = graft({"apply", std::to_string(target.pid()), update.patch.string()});
    EXPECT_EQ(refused.exit_code, 1) << r.define << " " << r.command << ": " << refused.out;
    EXPECT_TRUE(refused.err.find("epoll instance ") != std::string::npos &&
                refused.err.find(" watches fd ") != std::string::npos) << refused.err;
    for (const auto& e : r.expected) EXPECT_NE(refused.err.find(e), std::string::npos) << e << "\n" << refused.err;
    EXPECT_NE(refused.err.find("such a release needs a restart; nothing was changed"), std::string::npos) << refused.err;
    EXPECT_EQ(target.ask("v"), "1");
    ASSERT_EQ(target.ask("ping"), "pinged");
    EXPECT_EQ(target.ask("poll"), r.ready);
  }
}

// A member the release retypes in a way no default transformer converts
// (tests/programs/retyped: char[8] -> const char *, as redis 7.0.6's array
// that becomes a pointer): refused, naming the transformer that would set
// it; with that transformer of the user's, the default leaves the member
// zero and the user's code sets it (the graft before refused even then).
TEST_F(DataChanges, AFieldNoDefaultConvertsIsTheUsersTransformersToSet) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "retyped" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "retyped", "v1", flags), v2 = build_program(dir, "retyped", "v2", flags);
  const auto patch = dir.path() / "retyped.graft";
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("struct entry changed: field tag goes from char[8] to char *, which no default "
                             "transformer converts; set it in a transformer of yours (GRAFT_TRANSFORM(entry, from, "
                             "to)"),
            std::string::npos) << refused.err;
  const auto transformer = (programs_dir() / "retyped" / "transform" / "tag.c").string();
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", transformer, "--explain"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("tag: char[8] -> char *, which no default transformer converts: left zero for your "
                          "transformer to set"),
            std::string::npos) << made.out;
  // A member gone and a new one of its type at its offset: perhaps renamed, and --explain says what would be lost.
  std::vector<std::string> renaming = flags;
  renaming.push_back("-DRENAMED");
  auto renamed = graft({"diff", v1.string(), build_program(dir, "retyped", "v2", renaming).string(), "-o",
                        (dir.path() / "renamed.graft").string(), "--transform", transformer, "--explain"});
  ASSERT_EQ(renamed.exit_code, 0) << renamed.err;
  EXPECT_NE(renamed.out.find("flags: removed, its value is dropped; mask (int) is new in its place: if the "
                             "release renamed flags to mask, the value is lost (the new one starts at zero): carry it "
                             "in a transformer, GRAFT_TRANSFORM(entry, from, to) { to->mask = from->flags; }"),
            std::string::npos) << renamed.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("make 7 seven"), "made");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["user_transformed"].get<int>(), 1) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("r"), "7 seven");
  ASSERT_EQ(target.ask("make 8 eight"), "made");
  EXPECT_EQ(target.ask("r"), "8 eight");
}

// Numbers the release wraps in a struct of one member (tests/programs/
// wrapped, redis 7.0.3's io_threads_pending): a global array, whose storage
// grows (each element aligned to a cache line), and a heap struct's member.
// The default keeps each value in the member, and the patch back takes it
// out again.
TEST_F(DataChanges, ANumberWrappedInAStructOfOneMemberKeepsItsValue) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "wrapped" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "wrapped", "v1", flags), v2 = build_program(dir, "wrapped", "v2", flags);
  const auto forward = diff(dir, v1, v2, "wrapped.graft", {"--explain"});
  ASSERT_FALSE(forward.patch.empty());
  const auto back = diff(dir, v2, v1, "back.graft");
  Process target({v1.string()});
  for (const char* command : {"add 0 5", "add 3 7", "add 3 1"}) ASSERT_EQ(target.ask(command), "added");
  ASSERT_EQ(target.ask("r"), "5 0 0 8 hits 13");
  auto applied = graft({"apply", std::to_string(target.pid()), forward.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("r"), "5 0 0 8 hits 13");
  ASSERT_EQ(target.ask("add 1 2"), "added");
  EXPECT_EQ(target.ask("r"), "5 2 0 8 hits 15");
  auto reverted = graft({"apply", std::to_string(target.pid()), back.patch.string()});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("r"), "5 2 0 8 hits 15");
}

// A list whose head is a struct of its own kind held by value in its owner
// (tests/programs/sentinel, beanstalkd's reserved jobs): the last job's
// `next` and the first's `prev` point into the middle of a connection.
// v2 moves the links inside each job and the sentinel inside each
// connection: every such pointer follows the sentinel into the new layout,
// and into the connection's new block where it must move (-DNO_ROOM); the
// revert brings them back. (The graft before refused: "graft cannot follow
// pointers into the middle of transformed objects yet".)
TEST_F(DataChanges, PointersToAStructHeldInsideAnotherFollowItIntoTheNewLayout) {
  for (const std::string define : {"", "-DNO_ROOM"}) {
    std::vector<std::string> flags = {"-I" + (programs_dir() / "sentinel" / "common").string(),
                                      "-I" + (programs_dir() / "shared").string()};
    if (!define.empty()) flags.push_back(define);
    const auto update = build_update(dir, "sentinel", flags);
    Process target({update.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("take 0 2"), "taken");
    ASSERT_EQ(target.ask("take 1 1"), "taken");
    const std::string before = target.ask("dump");
    ASSERT_EQ(before, "0: 1 2 / 2 1; 1: 3 / 3; 2: /");
    auto applied = graft({"apply", std::to_string(target.pid()), update.patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << define << ": " << applied.err;
    const auto report = nlohmann::json::parse(applied.out);
    EXPECT_EQ(report["objects"].get<int>(), 6) << applied.out;  // 3 connections, 3 jobs
    EXPECT_EQ(report["objects_moved"].get<int>(), define.empty() ? 0 : 3) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    EXPECT_EQ(target.ask("dump"), before) << define;
    ASSERT_EQ(target.ask("take 2 1"), "taken");
    ASSERT_EQ(target.ask("take 0 1"), "taken");
    EXPECT_EQ(target.ask("dump"), "0: 1 2 5 / 5 2 1; 1: 3 / 3; 2: 4 / 4") << define;
    auto reverted = graft({"revert", std::to_string(target.pid())});
    ASSERT_EQ(reverted.exit_code, 0) << define << ": " << reverted.err;
    EXPECT_EQ(target.ask("v"), "1");
    EXPECT_EQ(target.ask("dump"), "0: 1 2 5 / 5 2 1; 1: 3 / 3; 2: 4 / 4") << define;
  }
}

// A struct ending in a flexible array member (beanstalkd 1.11's job and its
// body) that the release changes: a sentinel held inside its owner has no
// elements, and is transformed with its owner; one with elements (a job with
// its body after it) moves with them, the elements carried to the new
// layout's flexible array (they were refused: header and tail must move
// together). tests/programs/tailbody: the elements' bytes themselves.
TEST_F(DataChanges, AStructWithAFlexibleArrayIsTransformedWhereItHasNoElements) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "sentinel" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string(), "-DFLEX"};
  const auto update = build_update(dir, "sentinel", flags);
  {
    Process target({update.v1.string()});
    ASSERT_EQ(target.ask("open"), "opened");
    ASSERT_EQ(target.ask("open"), "opened");
    auto applied = graft({"apply", std::to_string(target.pid()), update.patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 2) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    ASSERT_EQ(target.ask("take 1 2"), "taken");
    EXPECT_EQ(target.ask("dump"), "0: /; 1: 1 2 / 2 1");
  }
  Process target({update.v1.string()});
  ASSERT_EQ(target.ask("open"), "opened");
  ASSERT_EQ(target.ask("take 0 1"), "taken");
  auto applied = graft({"apply", std::to_string(target.pid()), update.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), "0: 1 / 1");
}

// The elements of a flexible array member live on across the release
// (tests/programs/tailbody: messages with their text after the header).
// v2 grows the header: each message moves with its text, into the new
// layout's flexible array. v3 makes the array a pointer to the same bytes
// kept right after the struct (beanstalkd 1.12's job body): graft diff
// refuses naming GRAFT_TAIL, and with it each message moves with its text,
// the pointer set to it.
TEST_F(DataChanges, AFlexibleArraysElementsMoveWithTheirStructOrBecomeItsTail) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "tailbody" / "common").string()};
  const auto v1 = build_program(dir, "tailbody", "v1", flags), v2 = build_program(dir, "tailbody", "v2", flags);
  const auto v3 = build_program(dir, "tailbody", "v3", flags);
  const std::vector<std::string> commands = {"add hello", "add a somewhat longer message", "add x"};
  const std::string expected = "100:5:hello 101:25:a somewhat longer message 102:1:x";
  {
    const auto patch = diff(dir, v1, v2, "tail-v2.graft");
    Process target({v1.string()});
    for (const auto& c : commands) target.ask(c);
    ASSERT_EQ(target.ask("dump"), expected);
    auto applied = graft({"apply", std::to_string(target.pid()), patch.patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects_moved"].get<int>(), 3) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    EXPECT_EQ(target.ask("dump"), expected);
  }
  auto refused = graft({"diff", v1.string(), v3.string(), "-o", (dir.path() / "no.graft").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("GRAFT_TAIL(msg, body)"), std::string::npos) << refused.err;
  const auto patch = diff(dir, v1, v3, "tail-v3.graft",
                          {"--transform", (programs_dir() / "tailbody" / "directives" / "tail.c").string(), "--explain"});
  EXPECT_NE(patch.out.find("the flexible array becomes a pointer to its elements, kept right after the struct"),
            std::string::npos) << patch.out;
  Process target({v1.string()});
  for (const auto& c : commands) target.ask(c);
  auto applied = graft({"apply", std::to_string(target.pid()), patch.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "3");
  EXPECT_EQ(target.ask("dump"), expected);
  ASSERT_EQ(target.ask("add new"), "added");
  EXPECT_EQ(target.ask("dump"), expected + " 103:3:new");
}

// The epoll data words graft sets at the commit are journaled with the rest
// of it: graft killed after setting the first (GRAFT_TEST_KILL_AT=epoll),
// its guardian sets every one back, and the process runs on as before, on
// its old objects, the words the kernel hands back its own again.
TEST_F(DataChanges, AKilledCommitLeavesTheKernelsWordsAsTheyWere) {
  const auto update = build_update(dir, "kernelref",
                                   {"-I" + (programs_dir() / "kernelref" / "common").string(),
                                    "-I" + (programs_dir() / "shared").string(), "-DNO_ROOM"});
  Process target({update.v1.string()});
  ASSERT_EQ(target.ask("open"), "opened");
  ASSERT_EQ(target.ask("open"), "opened");
  const std::string epoll = target.ask("e");
  auto words = [&] {
    std::ifstream info("/proc/" + std::to_string(target.pid()) + "/fdinfo/" + epoll);
    std::string line, out;
    while (std::getline(info, line))
      if (line.starts_with("tfd:")) out += line.substr(0, line.find(" pos:")) + "\n";
    return out;
  };
  const std::string before = words();
  ASSERT_NE(before.find("tfd:"), std::string::npos) << "fd " << epoll << " watches nothing";
  auto killed = run({"env", "GRAFT_TEST_KILL_AT=epoll:1", (bin_dir() / "graft").string(), "apply",
                     std::to_string(target.pid()), update.patch.string()});
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  // "killed at epoll:1 (guardian PID)": its guardian puts the process right, then ends.
  const auto named = killed.err.find("(guardian ");
  ASSERT_NE(named, std::string::npos) << killed.err;
  const pid_t guardian = std::stoi(killed.err.substr(named + 10));
  auto ended = [&] {  // gone, or a zombie nobody has reaped yet
    std::ifstream stat("/proc/" + std::to_string(guardian) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto state = text.rfind(") ");
    return state == std::string::npos || text[state + 2] == 'Z';
  };
  for (int polls = 0; polls < 1000 && !ended(); ++polls) usleep(10000);
  ASSERT_TRUE(ended()) << "guardian " << guardian << " still running after 10 s";
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(words(), before);
  ASSERT_EQ(target.ask("ping"), "pinged");
  EXPECT_EQ(target.ask("poll"), "2 ready, served 2");
  EXPECT_EQ(target.ask("r"), "1 1");
  auto applied = graft({"apply", std::to_string(target.pid()), update.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_NE(words(), before);
  ASSERT_EQ(target.ask("ping"), "pinged");
  EXPECT_EQ(target.ask("poll"), "2 ready, served 4");
  EXPECT_EQ(target.ask("r"), "2 2");
}

// A struct the first unit linked only declares, defined in a later one
// (tests/programs/forwarddecl): DWARF 5's declaration flag has no value, and
// graft read the declaration as an empty definition, so the entry that grows
// in v2 was no change (the patch had no data plan, and v2's code read 0
// where the entry holds 10). Now the definition fills the declared name.
TEST_F(DataChanges, AStructTheFirstUnitOnlyDeclaresIsReadFromItsDefinition) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "forwarddecl" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "forwarddecl", "v1", flags), v2 = build_program(dir, "forwarddecl", "v2", flags);
  const auto made = diff(dir, v1, v2, "forwarddecl.graft", {"--explain"});
  EXPECT_NE(made.out.find("struct entry\n      size 24 -> 32 bytes"), std::string::npos) << made.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("init"), "made");
  ASSERT_EQ(target.ask("r"), "10");
  auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 1) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("r"), "10");
}

TEST_F(DataChanges, DirectivesThatDoNotMatchTheOldTypesAreRefusedAtDiff) {
  const auto v1 = build_program(dir, "annot", "v1");
  const auto v2 = build_program(dir, "annot", "v2");
  auto refused = [&](const std::string& name, const std::string& text) {
    const auto path = dir.path() / name;
    std::ofstream(path) << "#include <graft/graft.h>\n#include \"types.h\"\n\n" << text;
    auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--transform",
                         path.string()});
    EXPECT_EQ(result.exit_code, 1) << name;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "refused.graft"));
    return result.err;
  };
  std::string err = refused("member.c", "GRAFT_POINTS_TO(slot, vaule, item);\n");
  EXPECT_NE(err.find("member.c:4: GRAFT_POINTS_TO(slot, vaule, item): struct slot has no member vaule (the field)"),
            std::string::npos) << err;
  err = refused("narrow.c", "GRAFT_POINTS_TO(table, nslots, item);\n");
  EXPECT_NE(err.find("struct table.nslots is unsigned int (4 bytes), not a pointer-sized member"), std::string::npos) << err;
  err = refused("pointee.c", "GRAFT_POINTS_TO(slot, value, itme);\n");
  EXPECT_NE(err.find("the old version defines no struct itme (the pointee)"), std::string::npos) << err;
  err = refused("tag.c", "GRAFT_UNION_MEMBER(cell, u, kind, KIND_BLOBB, blob);\n");
  EXPECT_NE(err.find("the tag value KIND_BLOBB is neither an integer nor an enumerator of the old version"),
            std::string::npos) << err;
  err = refused("split.c", "GRAFT_POINTS_TO(slot,\n  value, item);\n");
  EXPECT_NE(err.find("split.c:4: write each directive on one line"), std::string::npos) << err;
  err = refused("live.c", "GRAFT_POINTS_TO(stash, blob, blob);\nGRAFT_UNION_MEMBER(cell, u, kind, KIND_BLOB, nosuch);\n");
  EXPECT_NE(err.find("live.c:5: GRAFT_UNION_MEMBER(cell, u, kind, KIND_BLOB, nosuch): "), std::string::npos) << err;
  EXPECT_NE(err.find("has no member nosuch (the live member)"), std::string::npos) << err;
}

}  // namespace
}  // namespace graft::test
