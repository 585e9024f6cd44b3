// Reverting a patch that changed data, on real processes: the data goes back
// to the old layouts by the inverse of the patch's own plan, values the
// program changed since the update included; what cannot come back (a value
// that no longer fits, a removed field, a user's transformer) is refused in
// one line, with the process running the new version as before.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "../support/harness.h"

namespace graft::test {
namespace {

class DataRevert : public ::testing::Test {
 protected:
  TempDir dir;

  // A refused revert: one line naming `expected`, the process still on `version`.
  void expect_refused(Process& target, const std::string& version, const std::string& dump,
                      const std::vector<std::string>& expected) {
    auto revert = graft({"revert", std::to_string(target.pid())});
    EXPECT_EQ(revert.exit_code, 1);
    EXPECT_EQ(std::count(revert.err.begin(), revert.err.end(), '\n'), 1) << revert.err;
    for (const auto& e : expected) EXPECT_NE(revert.err.find(e), std::string::npos) << e << "\n" << revert.err;
    EXPECT_EQ(target.ask("v"), version);
    EXPECT_EQ(target.ask("dump"), dump);
    auto status = graft({"status", std::to_string(target.pid())});
    EXPECT_NE(status.out.find("#1"), std::string::npos) << status.out;  // still applied
  }
};

// (a) A grown table: `names` (writable, so the patch gave it new storage,
// filled from the old value) and `sizes` (constant: a new copy). The old
// storage was never touched; the old code reads it again, with what the
// program changed in the new copy since the update written back.
TEST_F(DataRevert, AGrownTableRevertsAndTheProgramRunsOn) {
  const auto [v1, v2, patch] = build_update(dir, "retable");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("2"), "-1 ?");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("2"), "30 thirty");
  EXPECT_EQ(target.ask("1"), "20 twenty");
  ASSERT_EQ(target.ask("alias 1"), "aliased");  // the new code changes the new copy
  EXPECT_EQ(target.ask("1"), "20 ten");
  auto revert = graft({"revert", std::to_string(target.pid()), "--json"});
  ASSERT_EQ(revert.exit_code, 0) << revert.err;
  EXPECT_EQ(nlohmann::json::parse(revert.out)["objects"].get<int>(), 1) << revert.out;  // names, written back
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("2"), "-1 ?");
  EXPECT_EQ(target.ask("0"), "10 ten");
  EXPECT_EQ(target.ask("1"), "20 ten");  // the change made under v2 is kept
  ASSERT_EQ(target.ask("alias 0"), "aliased");
  EXPECT_EQ(target.ask("0"), "10 ten");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  auto status = graft({"status", std::to_string(target.pid())});
  EXPECT_NE(status.out.find("no graft patches applied"), std::string::npos) << status.out;
  // And the patch applies again.
  ASSERT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  EXPECT_EQ(target.ask("2"), "30 thirty");
  EXPECT_EQ(target.ask("1"), "20 ten");
}

// (b) A struct gains a field (in front: every other field moves) and a field
// widens; its live heap objects are transformed back, with the values the
// new version gave them.
TEST_F(DataRevert, HeapObjectsGoBackToTheOldLayoutWithTheirNewValues) {
  const auto [v1, v2, patch] = build_update(dir, "revert");
  const auto explained = diff(dir, v1, v2, "again.graft", {"--explain"});
  EXPECT_NE(explained.out.find("revert   the data goes back by the inverse plan"), std::string::npos) << explained.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("add 4"), "added");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 4) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("set 2 -5"), "set");
  ASSERT_EQ(target.ask("set 0 2147483647"), "set");
  ASSERT_EQ(target.ask("add 1"), "added");  // an object the new code made, in the new layout
  const std::string changed = target.ask("dump");
  EXPECT_EQ(changed, "items 4:40 3:30 2:-5 1:10 0:2147483647");
  auto revert = graft({"revert", std::to_string(target.pid()), "--json"});
  ASSERT_EQ(revert.exit_code, 0) << revert.err;
  EXPECT_EQ(nlohmann::json::parse(revert.out)["objects"].get<int>(), 5) << revert.out;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), changed);
  ASSERT_EQ(target.ask("set 3 33"), "set");  // the old code walks and changes them
  ASSERT_EQ(target.ask("add 1"), "added");
  EXPECT_EQ(target.ask("dump"), "items 5:50 4:40 3:33 2:-5 1:10 0:2147483647");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

// (c) A widened field whose value no longer fits the old width.
TEST_F(DataRevert, AValueThatNoLongerFitsRefusesTheRevertNamingTheField) {
  const auto [v1, v2, patch] = build_update(dir, "revert");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("add 3"), "added");
  ASSERT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  ASSERT_EQ(target.ask("set 1 5000000000"), "set");
  const std::string dump = target.ask("dump");
  EXPECT_EQ(dump, "items 2:20 1:5000000000 0:0");
  expect_refused(target, "2", dump,
                 {"cannot be reverted: struct item.value of the object at 0x", "holds 5000000000, which does not fit int",
                  "nothing was changed"});
  ASSERT_EQ(target.ask("add 1"), "added");  // the new version runs on
  // Once the value fits again, the revert goes through.
  ASSERT_EQ(target.ask("set 1 11"), "set");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), "items 3:30 2:20 1:11 0:0");
}

// (d) A removed field: its values are gone.
TEST_F(DataRevert, ARemovedFieldRefusesTheRevert) {
  const auto v1 = build_program(dir, "revert", "v1");
  const auto v3 = build_program(dir, "revert", "v3");
  const auto made = diff(dir, v1, v3, "removed.graft", {"--explain"});
  EXPECT_NE(made.out.find("revert   refused: it removes struct item.junk"), std::string::npos) << made.out;
  const auto patch = made.patch;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("add 3"), "added");
  ASSERT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  expect_refused(target, "3", "items 2:20 1:10 0:0",
                 {"cannot be reverted: it removes struct item.junk", "graft diff NEW OLD"});
}

// A field that becomes unsigned (int -> unsigned long): a negative value
// does not survive the update, so the revert is refused, and says so in the
// update's own terms (it said "is narrowed (int -> unsigned long)").
TEST_F(DataRevert, AFieldThatLosesItsSignRefusesTheRevertSayingSo) {
  const auto made = diff(dir, build_program(dir, "revert", "v1"), build_program(dir, "revert", "v4"), "sign.graft",
                         {"--explain"});
  EXPECT_NE(made.out.find("revert   refused: struct item.value loses its sign (int -> unsigned long: a negative value "
                          "does not survive the update)"), std::string::npos) << made.out;
  EXPECT_EQ(made.out.find("narrowed"), std::string::npos) << made.out;
}

// (e) A user's transformer ran: graft cannot invert the user's code.
TEST_F(DataRevert, AUserTransformerRefusesTheRevert) {
  const auto v1 = build_program(dir, "revert", "v1");
  const auto v2 = build_program(dir, "revert", "v2");
  const auto file = (programs_dir() / "revert" / "transformers" / "extra.c").string();
  const auto patch = diff(dir, v1, v2, "extra.graft", {"--transform", file}).patch;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("add 2"), "added");
  ASSERT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  expect_refused(target, "2", "items 1:10 0:0",
                 {"cannot be reverted: the user's transformer for struct item (graft_transform__item in ",
                  "graft diff NEW OLD"});
}

}  // namespace
}  // namespace graft::test
