// graft-cc's member facts as graft diff joins them (data/member_facts.h):
// a generic function's parameter, a member copied from another, a function
// called through a pointer, code not built with graft-cc.
#include <gtest/gtest.h>

#include "data/member_facts.h"

namespace graft {
namespace {

bool none(const std::string&) { return false; }
bool list_add_too(const std::string& function) { return function == "list_add"; }

const char* const kRecords =
    "unit\t/src/list.c\n"
    "store\tstruct lnode\t8\tlist_add\tparam\tlist_add\t1\n"
    "arg\tlist_add\t1\ttype\tstruct job\n"
    "store\tstruct copy\t0\tkeep\tmember\tstruct lnode\t8\n"
    "store\tstruct cb\t0\ton_start\tparam\ton_start\t0\n"
    "called\ton_start\n"
    "store\tstruct THREAD\t8\tinit\tunknown\treturned by malloc in init\n"
    "store\tstruct handler\t0\tbegin\tresult\tlast_node\treturned by last_node in begin\n"
    "returner\tlast_node\n"
    "return\tlast_node\ttype\tstruct lnode\n"
    "store\tstruct handler\t8\tbegin\tresult\tmalloc\treturned by malloc in begin\n"
    "store\tstruct handler\t16\tbegin\tresult\tnothing\treturned by nothing in begin\n"
    "returner\tnothing\n"
    "a line a newer graft-cc wrote\n";

TEST(MemberRecords, AGenericFunctionsParameterHoldsWhatItsCallersPass) {
  const auto facts = MemberFacts::parse(kRecords);
  EXPECT_TRUE(facts.recorded("/src/list.c"));
  EXPECT_FALSE(facts.recorded("/src/other.c"));
  auto holds = facts.holds("struct lnode", 8, none);
  EXPECT_TRUE(holds.stored);
  EXPECT_EQ(holds.types, std::set<std::string>{"struct job"});
  EXPECT_TRUE(holds.unknown.empty());
  EXPECT_EQ(holds.functions, std::set<std::string>{"list_add"});
  // Copied from that member: the same.
  EXPECT_EQ(facts.holds("struct copy", 0, none).types, std::set<std::string>{"struct job"});
  // Code not built with graft-cc may call list_add too.
  EXPECT_EQ(facts.holds("struct lnode", 8, list_add_too).unknown.size(), 1u);
  // No store: nothing.
  EXPECT_FALSE(facts.holds("struct lnode", 0, none).stored);
}

TEST(MemberRecords, WhatCannotBeToldSaysWhy) {
  const auto facts = MemberFacts::parse(kRecords);
  EXPECT_EQ(facts.holds("struct cb", 0, none).unknown,
            std::set<std::string>{"a parameter of on_start, which is called through a pointer"});
  // An anonymous struct a typedef names: DWARF's THREAD is the plugin's struct THREAD.
  EXPECT_EQ(facts.holds("THREAD", 8, none).unknown, std::set<std::string>{"returned by malloc in init"});
}

// A call's result: what the function returns, when its unit recorded it
// (a returner); a library's function stays unknown, with why.
TEST(MemberRecords, ACallsResultHoldsWhatTheFunctionReturns) {
  const auto facts = MemberFacts::parse(kRecords);
  auto holds = facts.holds("struct handler", 0, none);
  EXPECT_EQ(holds.types, std::set<std::string>{"struct lnode"});
  EXPECT_TRUE(holds.unknown.empty());
  EXPECT_TRUE(facts.kept_untyped("struct lnode"));
  EXPECT_EQ(facts.holds("struct handler", 8, none).unknown, std::set<std::string>{"returned by malloc in begin"});
  // A function that returns only NULL or numbers: nothing.
  holds = facts.holds("struct handler", 16, none);
  EXPECT_TRUE(holds.stored);
  EXPECT_TRUE(holds.types.empty());
  EXPECT_TRUE(holds.unknown.empty());
}

// Two units define different structs of one name (hiredis's struct dict
// beside redis's): each unit's records are about its own, the second's
// under its variant name (TypeTable::variants), a typedef'd one's too.
TEST(MemberRecords, TwoStructsOfOneNameAreToldApartByTheUnitThatDefinesEach) {
  const char* const records =
      "begin\t/src/server.c\n"
      "unit\t/src/server.c\n"
      "made\tstruct dict\ta tagged cast to it in dictCreate\n"
      "store\tstruct dictEntry\t8\tdictAdd\ttype\tstruct client\n"
      "begin\t/deps/async.c\n"
      "unit\t/deps/async.c\n"
      "made\tstruct dict\ta cast to it in dictCreate\n"
      "store\tstruct dictEntry\t8\tdictAdd\ttype\tstruct dict\n"
      "store\tstruct THREAD\t0\tstart\tmember\tstruct dictEntry\t8\n"
      "tagged\tstruct dict\t7\tmalloc\tdictCreate\n";
  const MemberFacts::Variants variants = {
      {"/deps/async.c", {{"struct dict", "struct dict@async.c"}, {"struct dictEntry", "struct dictEntry@async.c"},
                         {"THREAD", "THREAD@async.c"}}}};
  const auto facts = MemberFacts::parse(records, variants);
  EXPECT_EQ(facts.made("struct dict"), std::set<std::string>{"a tagged cast to it in dictCreate"});
  EXPECT_EQ(facts.made("struct dict@async.c"), std::set<std::string>{"a cast to it in dictCreate"});
  EXPECT_EQ(facts.holds("struct dictEntry", 8, none).types, std::set<std::string>{"struct client"});
  EXPECT_EQ(facts.holds("struct dictEntry@async.c", 8, none).types, std::set<std::string>{"struct dict@async.c"});
  EXPECT_EQ(facts.holds("THREAD@async.c", 0, none).types, std::set<std::string>{"struct dict@async.c"});
  EXPECT_EQ(facts.tag_names(7), std::set<std::string>{"struct dict@async.c"});
  // Read without the variants (a build whose units agree), the records join as before.
  EXPECT_EQ(MemberFacts::parse(records).made("struct dict").size(), 2u);
  // Records with no "begin" (an older graft-cc) cannot say which file's struct they are about.
  EXPECT_TRUE(facts.begun("/deps/async.c"));
  EXPECT_FALSE(MemberFacts::parse(kRecords).begun("/src/list.c"));
}

}  // namespace
}  // namespace graft
