// Data changes on a real process: every live object of a changed type is
// found from the globals and transformed at commit; what graft cannot do
// safely is refused with the target exactly as it was.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

TEST_F(DataChanges, ObjectsWithoutRoomToGrowAreRefusedAndNothingChanges) {
  const auto v2 = build_program(dir, "data", "v2");
  const auto v3 = build_program(dir, "data", "v3");
  const auto patch = dir.path() / "grow.graft";
  ASSERT_EQ(graft({"diff", v2.string(), v3.string(), "-o", patch.string()}).exit_code, 0);
  Process target({v2.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  const std::string before = target.ask("dump");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("struct tree grows from 40 to 104 bytes"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("nothing was changed"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), before);
  EXPECT_TRUE(text_matches_binary(target.pid(), v2));
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

}  // namespace
}  // namespace graft::test
