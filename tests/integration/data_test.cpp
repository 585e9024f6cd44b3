// Data changes on a real process: every live object of a changed type is
// found from the globals and transformed at commit; what graft cannot do
// safely is refused with the target exactly as it was.
#include <gtest/gtest.h>
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
  auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "again.graft").string(), "--explain"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* expected :
       {"struct node", "size 48 -> 56 bytes", "weight: added at offset 8 (long), set to zero",
        "count: moves from offset 8 to 32, retyped int -> long long: converted", "junk: removed, its value is dropped",
        "color: moves from offset 32 to 40, enumerators renumbered: mapped by name",
        "level: moves from offset 36 to 44, retyped unsigned int:5 -> unsigned int:7: converted",
        "score: moves from offset 40 to 48, retyped double -> float: converted", "struct tree",
        "key: moves from offset 16 to 24, retyped int -> long long: converted", "struct holder", "struct stats",
        "global   stats", "global   main.c::counter", "int -> long: new storage",
        "root     main.c::list_head", "root     table", "global   holders"})
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
  const auto patch = dir.path() / "grow.graft";
  ASSERT_EQ(graft({"diff", v2.string(), v3.string(), "-o", patch.string()}).exit_code, 0);
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

TEST_F(DataChanges, AFrameThatMayHoldChangedDataKeepsTheUpdateWaiting) {
  const auto [v1, v2, patch] = build_update(dir, "data");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 3"), "built");
  ASSERT_EQ(target.ask("hold"), "held");  // a thread whose frame alone points to a node, blocked in read()
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("holder_thread"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("its frame may point to changed data"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
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

// What a fresh process of `binary` answers to `commands`, the last one's reply.
std::string fresh_answer(const std::filesystem::path& binary, const std::vector<std::string>& commands) {
  Process fresh({binary.string()});
  std::string reply;
  for (const auto& c : commands) reply = fresh.ask(c);
  return reply;
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

TEST_F(DataChanges, AnUntypedReferenceToAnObjectThatMustMoveRefusesAndNothingChanges) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("alias"), "aliased");  // a void * field points to the first list item
  const std::string before = target.ask("dump");
  const std::string maps = maps_of(target.pid());
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  for (const char* expected : {"the struct table at 0x", ".cookie (void *) holds 0x", "the address of the struct item at",
                               "it grows from 16 to 48 bytes and its allocation has 24", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_EQ(maps_of(target.pid()), maps);  // no storage left mapped, no patch
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
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
                               "graft does not search frames", "nothing was changed"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_EQ(maps_of(target.pid()), maps);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("release"), "another address");
}

}  // namespace
}  // namespace graft::test
