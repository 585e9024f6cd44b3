// graft-cc's member facts on real processes (issue 15): what a program
// stores into its void * members, recorded by the compiler, lets graft diff
// follow a generic container's values with no declaration, and ask at diff
// time, all at once, about what the records cannot tell.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/harness.h"

namespace graft::test {
namespace {

namespace fs = std::filesystem;

class MemberFacts : public ::testing::Test {
 protected:
  TempDir dir;
};

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

// Every version of facts and perlist includes its shared source (common/).
std::vector<std::string> facts_flags() { return {"-I" + (programs_dir() / "facts" / "common").string()}; }
std::vector<std::string> perlist_flags() { return {"-I" + (programs_dir() / "perlist" / "common").string()}; }

// What a fresh process of `binary` answers to `commands`, the last one's reply.
std::string fresh_answer(const fs::path& binary, const std::vector<std::string>& commands) {
  Process fresh({binary.string()});
  std::string reply;
  for (const auto& c : commands) reply = fresh.ask(c);
  return reply;
}

// Starts `v1`, runs `setup`, waits for its worker thread to walk (it may
// not have run yet on a busy machine), applies `patch`, and expects it to
// answer "dump" as a fresh `v2` given the same commands, then, its worker
// walking again, the same after `after` too. apply's --json summary (empty
// if it failed).
nlohmann::json lands_under_the_worker(const fs::path& v1, const fs::path& v2, const fs::path& patch,
                                      const std::vector<std::string>& setup, const std::vector<std::string>& after) {
  Process target({v1.string()});
  for (const auto& command : setup) target.ask(command);
  EXPECT_TRUE(wait_until([&] { return target.ask("walks") == "walking"; }, std::chrono::seconds(20)));
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  if (result.exit_code != 0) return nlohmann::json::object();
  EXPECT_EQ(target.ask("v"), "2");
  std::vector<std::string> commands = setup;
  commands.push_back("dump");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, commands));
  // The worker walks in the new layout; what the new code adds joins the old.
  target.ask("walks");
  EXPECT_TRUE(wait_until([&] { return target.ask("walks") == "walking"; }, std::chrono::seconds(20)));
  for (const auto& command : after) target.ask(command);
  commands.insert(commands.end() - 1, after.begin(), after.end());
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, commands));
  EXPECT_TRUE(target.alive());
  return nlohmann::json::parse(result.out);
}

// (a) jobs behind a generic list's void * values (stored by list_add, a
// function of another file, from its parameter), (b) connections behind an
// event loop's void * client data: both structs grow, nothing is declared,
// and the update lands with every value kept, under a worker thread that
// walks the list. (e) glibc's FILE, reached from a global, is never asked
// about. Nor are a function's result (handler.userdata = list_first(&jobs),
// a node), a library's handle (dlopen's), a string literal's or a
// function's address, or a member memset poisoned: each was asked about
// before graft-cc recorded what functions return.
TEST_F(MemberFacts, AGenericListAndAnEventLoopLandWithNoDeclaration) {
  const auto v1 = build_program(dir, "facts", "v1", facts_flags()), v2 = build_program(dir, "facts", "v2", facts_flags());
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain"});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  for (const char* expected :
       {"recorded struct lnode.value, recorded by graft-cc to hold only struct job * (stored in list_add)",
        "recorded struct fevent.client_data, recorded by graft-cc to hold only struct conn * (stored in ev_add)",
        "recorded struct handler.userdata, recorded by graft-cc to hold only struct lnode * (stored in add)"})
    EXPECT_NE(explain.out.find(expected), std::string::npos) << expected << "\n" << explain.out;
  EXPECT_EQ(explain.out.find("no global reaches"), std::string::npos) << explain.out;
  // glibc's FILE is a root (log_file), its void * members checked at the commit, never asked about.
  for (const char* absent : {"_IO_FILE._lock", "_IO_FILE._freeres_buf", "plugin.handle", "plugin.label", "plugin.entry",
                              "context.privdata"})
    EXPECT_EQ(explain.out.find(absent), std::string::npos) << absent << "\n" << explain.out;
  const auto patch = dir.path() / "facts.graft";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const auto summary = lands_under_the_worker(v1, v2, patch, {"add 6", "open 3", "fire"}, {"add 2", "fire"});
  EXPECT_EQ(summary.value("objects", -1), 9) << summary;  // 6 jobs, 3 connections
}

// (c) WORKER, an anonymous struct known by its typedef name, holds its
// struct task in a void * stored from a thread's start argument, which
// graft-cc cannot follow: graft diff asks, in one line, naming the typedef
// and the directive (and no member of glibc's FILE, (e)); the directive
// written, the update lands.
TEST_F(MemberFacts, WhatTheRecordsCannotTellIsAskedAtDiffNamingTheTypedef) {
  const auto v1 = build_program(dir, "factsask", "v1"), v2 = build_program(dir, "factsask", "v2");
  const auto refused = dir.path() / "refused.graft";
  auto result = graft({"diff", v1.string(), v2.string(), "-o", refused.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  for (const char* expected : {"1 untyped member holds, and a changed struct may be there (struct task (its address is kept in an untyped "
                               "member, argument or return value)): declare each",
                               "WORKER.ctx (a parameter of run, which is called through a pointer): "
                               "GRAFT_POINTS_TO(WORKER, ctx, STRUCT); or, if it never holds a changed struct, "
                               "GRAFT_OPAQUE(WORKER, ctx);",
                               "nothing was written"})
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  for (const char* absent : {"_IO_FILE", "_lock", "_freeres_buf"})
    EXPECT_EQ(result.err.find(absent), std::string::npos) << absent << "\n" << result.err;
  EXPECT_FALSE(fs::exists(refused));

  const auto patch = dir.path() / "ask.graft";
  const auto directives = programs_dir() / "factsask" / "directives" / "points_to.c";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", directives.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Process target({v1.string()});
  ASSERT_TRUE(wait_until([&] { return target.ask("tasks") == "0:busy 1:busy"; }, std::chrono::seconds(20)));
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 2) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("tasks"), "0:busy 1:busy");
}

// A void * that holds one of several structs, each object its own (the
// sock's conn or the server: beanstalkd's Socket.x). graft diff asked for a
// declaration no single line can give; now each value is checked at the
// commit to be an object the typed pointers reach as one of those structs.
TEST_F(MemberFacts, AVoidPointerHoldingOneOfSeveralStructsIsCheckedObjectByObject) {
  const auto v1 = build_program(dir, "selfptr", "v1"), v2 = build_program(dir, "selfptr", "v2");
  const auto patch = dir.path() / "p.graft";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--explain"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  for (const char* expected : {"struct sock.x holds struct ", "struct conn", "struct server",
                               "as graft-cc's records say: checked at the commit, value by value"})
    EXPECT_NE(made.out.find(expected), std::string::npos) << expected << "\n" << made.out;
  {
    Process target({v1.string()});
    ASSERT_EQ(target.ask("a"), "accepted");
    ASSERT_EQ(target.ask("a"), "accepted");
    ASSERT_EQ(target.ask("s"), "11303");
    auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 2) << applied.out;
    EXPECT_EQ(target.ask("v"), "2");
    EXPECT_EQ(target.ask("s"), "11303");
  }
  // A conn that only its sock's x leads to: graft cannot see it as a conn, so it refuses.
  Process target({v1.string()});
  ASSERT_EQ(target.ask("a"), "accepted");
  ASSERT_EQ(target.ask("h"), "pending");
  auto refused = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  for (const char* expected : {"struct sock.x at 0x", "which no typed pointer reached as a struct ", "nothing was changed"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("s"), "11401");
}

// One generic list holds three structs, each in lists of its own: the jobs
// (a global list), the connections (the list srv.conns points to) and each
// connection's notes (the list conn.notes points to). No typed pointer
// reaches a connection or a note; graft-cc's records of every list_add call
// say which list holds what, so the value of each node is followed as its
// list's struct: both grow (and move), nothing is declared, and the update
// lands under a worker thread that walks the connections.
TEST_F(MemberFacts, AGenericListHoldingSeveralStructsIsFollowedPerList) {
  const auto v1 = build_program(dir, "perlist", "v1", perlist_flags());
  const auto v2 = build_program(dir, "perlist", "v2", perlist_flags());
  const auto made = diff(dir, v1, v2, "perlist.graft", {"--explain"});
  for (const char* expected : {"struct lnode.value holds one struct per struct list, as graft-cc's records of every call "
                               "of list_add say: struct conn.notes holds struct note, jobs holds struct job, srv.conns "
                               "holds struct conn"})
    EXPECT_NE(made.out.find(expected), std::string::npos) << expected << "\n" << made.out;
  EXPECT_EQ(made.out.find("no global reaches"), std::string::npos) << made.out;

  const auto summary = lands_under_the_worker(v1, v2, made.patch, {"add 3", "open 3"}, {"open 2", "add 1"});
  EXPECT_EQ(summary.value("objects", -1), 9) << summary;  // 3 connections, 6 notes
  EXPECT_EQ(summary.value("objects_moved", -1), 9) << summary;
}

// What the records say is not what the process did: a job's node linked
// into the connections' list too. Followed from the connections' list it
// would be transformed as a connection; graft sees it reached as both and
// refuses, and the process runs on unchanged.
TEST_F(MemberFacts, AValueThatBreaksWhatTheRecordsSayPerListIsRefused) {
  const auto v1 = build_program(dir, "perlist", "v1", perlist_flags());
  const auto v2 = build_program(dir, "perlist", "v2", perlist_flags());
  const auto made = diff(dir, v1, v2, "perlist.graft");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("add 2"), "added");
  ASSERT_EQ(target.ask("open 2"), "opened");
  ASSERT_EQ(target.ask("share"), "shared");
  auto refused = graft({"apply", std::to_string(target.pid()), made.patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  // Whichever list the traversal meets first names it.
  for (const char* expected : {"struct lnode.value in ", "which graft-cc's records of every call say is a struct ",
                               "but it was also reached as a struct ", "struct job", "struct conn",
                               "GRAFT_POINTS_TO, or GRAFT_OPAQUE", "nothing was changed"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_TRUE(target.alive());
}

// A changed struct reached only through globals that are themselves void *
// (tests/programs/voidglobal): one holds what a function returns as void *,
// which graft-cc's records now follow; the other what a call through a
// pointer returns, which graft diff asks about, naming the directive; a
// third, a struct made from memory first kept as void *, and a fourth, a
// struct whose address only goes through a variadic call, likewise. Before,
// such structs were taken to live in frames only and the update applied
// with them left in the old layout ("7000" where v2 answers "7014").
TEST_F(MemberFacts, AStructKeptOnlyInVoidPointerGlobalsIsFollowedOrAskedAbout) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "voidglobal" / "common").string()};
  const auto v1 = build_program(dir, "voidglobal", "v1", flags), v2 = build_program(dir, "voidglobal", "v2", flags);
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  // Five questions: named, with where to read each in full.
  for (const char* expected : {"5 untyped globals hold", "graft diff --questions FILE writes each with what the records "
                               "say of it and the two lines that settle it): global spare, global raw, global logged, "
                               "global backup, global previous; nothing was written",
                               // Each may hide: before, struct cfg and struct tag were taken to live in frames only.
                               "struct eng (", "struct cfg (", "struct tag ("})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_EQ(refused.err.find("global keep"), std::string::npos) << refused.err;
  // The same questions as a file to edit: every answer commented out, so
  // that the file as written declares nothing and graft diff asks again.
  const auto questions = dir.path() / "questions.c";
  auto asked = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--questions",
                      questions.string()});
  EXPECT_EQ(asked.exit_code, 1);
  EXPECT_NE(asked.err.find("every question is in " + questions.string()), std::string::npos) << asked.err;
  std::ifstream in(questions);
  const std::string skeleton((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* expected : {"#include <graft/graft.h>", "// global spare: returned by a call through a pointer in main\n"
                               "// GRAFT_GLOBAL_POINTS_TO(spare, STRUCT);\n// GRAFT_GLOBAL_OPAQUE(spare);",
                               "// global raw: returned by calloc in configure", "// global logged: ",
                               "// global backup: ", "// global previous: "})
    EXPECT_NE(skeleton.find(expected), std::string::npos) << expected << "\n" << skeleton;
  auto again = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--transform",
                      questions.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("5 untyped globals hold"), std::string::npos) << again.err;

  const auto directives = programs_dir() / "voidglobal" / "directives" / "points_to.c";
  const auto made = diff(dir, v1, v2, "voidglobal.graft", {"--transform", directives.string(), "--explain"});
  for (const char* expected : {"recorded global keep, recorded by graft-cc to hold only struct eng * (stored in main)",
                               "declared GRAFT_GLOBAL_POINTS_TO(spare, eng) at "})
    EXPECT_NE(made.out.find(expected), std::string::npos) << expected << "\n" << made.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("r"), "7014 3006 2040 99 4008 5010");
  auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 6) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("r"), "7014 3006 2040 99 4008 5010");
}

// A void * member that holds the address of an object that must move (it
// outgrows its block): recorded as a struct item *, it is rewritten like
// one, where without the records the update is refused (data_test.cpp).
TEST_F(MemberFacts, AnUntypedReferenceToAnObjectThatMovesIsRewritten) {
  const auto [v1, v2, patch] = build_update(dir, "move");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("build 10"), "built");
  ASSERT_EQ(target.ask("alias"), "aliased");  // table->cookie = items
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_GT(nlohmann::json::parse(result.out)["objects_moved"].get<int>(), 0) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"build 10", "alias", "dump"}));
  ASSERT_EQ(target.ask("free"), "freed");  // the program frees what moved
  ASSERT_EQ(target.ask("build 3"), "built");
  EXPECT_TRUE(target.alive());
}

// (d) Code not built with graft-cc (plain clang, linked in) stores into
// struct stash.item: no record shows what, so graft diff asks about it.
TEST_F(MemberFacts, AStoreByCodeNotBuiltWithGraftCcIsAskedAtDiff) {
  auto foreign = [&](const std::string& version) {
    const fs::path object = dir.path() / ("stash-" + version + ".o");
    auto compiled = run({"clang-14", "-g", "-O2", "-c", (programs_dir() / "facts" / "foreign" / "stash.c").string(),
                         "-I", (programs_dir() / "facts" / version).string(), "-o", object.string()});
    EXPECT_EQ(compiled.exit_code, 0) << compiled.err;
    return object.string();
  };
  const auto v1 = build_program(dir, "facts", "v1", {facts_flags()[0], foreign("v1")});
  const auto v2 = build_program(dir, "facts", "v2", {facts_flags()[0], foreign("v2")});
  auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("struct stash.item (stash.c uses struct stash and was not built with graft-cc): "
                            "GRAFT_POINTS_TO(stash, item, STRUCT);"),
            std::string::npos) << result.err;
  // What graft-cc's records settle is not asked.
  EXPECT_EQ(result.err.find("lnode"), std::string::npos) << result.err;
}

// A declaration graft-cc's records contradict would apply and break the
// program: GRAFT_POINTS_TO naming one struct where the program stores others
// too (they would be transformed as that struct), GRAFT_OPAQUE on a member
// or global a changed struct is stored into (it would be left behind).
// Each is refused at diff time, naming the store.
TEST_F(MemberFacts, ADeclarationTheRecordsContradictIsRefused) {
  const auto v1 = build_program(dir, "perlist", "v1", perlist_flags());
  const auto v2 = build_program(dir, "perlist", "v2", perlist_flags());
  const std::vector<std::string> voidglobal_flags = {"-I" + (programs_dir() / "voidglobal" / "common").string()};
  const auto g1 = build_program(dir, "voidglobal", "v1", voidglobal_flags);
  const auto g2 = build_program(dir, "voidglobal", "v2", voidglobal_flags);
  struct Case {
    fs::path old_build, new_build;
    std::string line;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {v1, v2, "GRAFT_POINTS_TO(lnode, value, conn);",
       {"GRAFT_POINTS_TO(lnode, value, conn) at ", "is contradicted by graft-cc's records: list_add also stores a "
        "struct job into struct lnode at offset 8", "remove the line"}},
      {v1, v2, "GRAFT_OPAQUE(lnode, value);",
       {"GRAFT_OPAQUE(lnode, value) at ", "is contradicted by graft-cc's records: list_add stores a struct conn into "
        "struct lnode at offset 8, a struct that changes, which the update must find"}},
      {g1, g2, "GRAFT_GLOBAL_POINTS_TO(keep, cfg);",
       {"GRAFT_GLOBAL_POINTS_TO(keep, cfg) at ", "make also stores a struct eng into global keep"}},
      {g1, g2, "GRAFT_GLOBAL_OPAQUE(keep);",
       {"GRAFT_GLOBAL_OPAQUE(keep) at ", "make stores a struct eng into global keep, a struct that changes"}},
  };
  for (const auto& c : cases) {
    const auto directives = dir.path() / "directives.c";
    std::ofstream(directives) << "#include <graft/graft.h>\n" << c.line << "\n";
    const auto patch = dir.path() / "contradicted.graft";
    auto refused = graft({"diff", c.old_build.string(), c.new_build.string(), "-o", patch.string(), "--transform",
                          directives.string()});
    EXPECT_EQ(refused.exit_code, 1) << c.line;
    EXPECT_TRUE(one_line(refused.err)) << refused.err;
    for (const auto& expected : c.expected)
      EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
    EXPECT_NE(refused.err.find("nothing was written"), std::string::npos) << refused.err;
    EXPECT_FALSE(fs::exists(patch));
  }
}

// A member that holds a changed struct among several others, and values
// graft-cc cannot follow too (here list_add is also called by code not built
// with graft-cc), has no true declaration: GRAFT_POINTS_TO would name one
// struct of three, GRAFT_OPAQUE would hide the connections. graft diff says
// the release cannot be applied live rather than ask for an answer that
// could only be wrong (redis 7.0.2 -> 7.0.3's listNode.value).
TEST_F(MemberFacts, AMemberNoDeclarationCanSettleSaysTheReleaseNeedsARestart) {
  auto stray = [&](const std::string& version) {
    const fs::path object = dir.path() / ("stray-" + version + ".o");
    auto compiled = run({"clang-14", "-g", "-O2", "-c", (programs_dir() / "perlist" / "foreign" / "stray.c").string(),
                         "-I", (programs_dir() / "perlist" / "common").string(), "-o", object.string()});
    EXPECT_EQ(compiled.exit_code, 0) << compiled.err;
    return object.string();
  };
  const auto v1 = build_program(dir, "perlist", "v1", {perlist_flags()[0], stray("v1")});
  const auto v2 = build_program(dir, "perlist", "v2", {perlist_flags()[0], stray("v2")});
  const auto questions = dir.path() / "questions.c";
  const auto patch = dir.path() / "refused.graft";
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--questions", questions.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  for (const char* expected :
       {"graft cannot build this update: no declaration can make it safe: struct lnode.value holds ",
        "struct conn (which changes)", "struct note (which changes)", "among 3 structs graft-cc's records show stored "
        "there, and values they cannot follow (a parameter of list_add, which code not built with graft-cc may call",
        "GRAFT_POINTS_TO would name one struct of several, GRAFT_OPAQUE would hide a changed one",
        "the running process cannot take this release (restart it into the new build)", "nothing was written",
        "every question is in "})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_EQ(refused.err.find("to edit and pass as --transform"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(patch));
  std::ifstream in(questions);
  const std::string skeleton((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(skeleton.find("// struct lnode.value: no declaration can settle it: holds "), std::string::npos) << skeleton;
  EXPECT_EQ(skeleton.find("GRAFT_OPAQUE(lnode, value)"), std::string::npos) << skeleton;
}

// A struct whose only lasting pointer is in memory graft cannot type (an
// array of void * slots, as Lua's registry and userdata keep redis's structs)
// and that no global reaches: graft-cc's records show its address goes into
// an untyped argument, so the frames do not account for it. graft diff
// refuses; before, it noted "assumed to be only in frames", and the update
// applied and the program read the old layout (`7 0` where v2 answers
// `7 70`). GRAFT_FRAMES_ONLY is the user's word that they do (checked
// against the old types).
TEST_F(MemberFacts, AStructKeptWhereNoFrameAccountsForItIsRefusedUnlessDeclaredFramesOnly) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "keptaway" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "keptaway", "v1", flags), v2 = build_program(dir, "keptaway", "v2", flags);
  const auto patch = dir.path() / "p.graft";
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  for (const char* expected :
       {"graft cannot find the live instances of struct ctx (its address is kept in an untyped member, argument or "
        "return value): no global reaches it", "live ones would keep the old layout under the new code",
        "declare so (GRAFT_FRAMES_ONLY(ctx))", "restart it into the new build", "nothing was written"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_FALSE(fs::exists(patch));

  const auto declared = dir.path() / "frames_only.c";
  std::ofstream(declared) << "#include <graft/graft.h>\nGRAFT_FRAMES_ONLY(ctx);\n";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", declared.string(), "--explain"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("no global reaches struct ctx, and GRAFT_FRAMES_ONLY(ctx) at "), std::string::npos) << made.out;
  // The declaration speaks of the program: the way back honours it too (before, the revert was refused).
  EXPECT_NE(made.out.find("revert   the data goes back by the inverse plan"), std::string::npos) << made.out;

  const auto wrong = dir.path() / "wrong.c";
  std::ofstream(wrong) << "#include <graft/graft.h>\nGRAFT_FRAMES_ONLY(nosuch);\n";
  auto bad = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", wrong.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find(wrong.string() + ":2"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("the old version defines no struct nosuch"), std::string::npos) << bad.err;
}

// beanstalkd's sockets (tests/programs/selfsock): a struct sock inside each
// connection and inside the server, whose void * x points back to its
// owner, and epoll's data word is the sock. Two idle connections are known
// only to the kernel. graft follows each word as a struct sock (all epoll's
// data holds, by the records) and x as a struct conn when it is in the heap
// (the server lives only in its global): both connections are found and
// transformed, and the new code serves them right ("served 4"; untransformed,
// it reads `served` where v1 kept `spare`, and says 2).
TEST_F(MemberFacts, ASockPointingBackToItsOwnerIsFollowedFromTheKernelToTheConnection) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "selfsock" / "common").string(),
                                          "-I" + (programs_dir() / "shared").string()};
  const auto v1 = build_program(dir, "selfsock", "v1", flags), v2 = build_program(dir, "selfsock", "v2", flags);
  const auto made = diff(dir, v1, v2, "selfsock.graft", {"--explain"});
  for (const char* expected : {"struct sock.x holds struct server or struct conn", "a value in the heap is followed as "
                               "a struct conn: the others live only in globals of their type",
                               "epoll's data words (struct epoll_event.data), recorded by graft-cc to hold only struct "
                               "sock * (stored in watch)"})
    EXPECT_NE(made.out.find(expected), std::string::npos) << expected << "\n" << made.out;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("open"), "opened");
  ASSERT_EQ(target.ask("open"), "opened");
  ASSERT_EQ(target.ask("ping"), "pinged");
  ASSERT_EQ(target.ask("poll"), "3 ready, served 2");  // the server's eventfd too
  auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["objects"].get<int>(), 2) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("ping"), "pinged");
  EXPECT_EQ(target.ask("poll"), "3 ready, served 4");
}

// Heap type tags (graft-cc --graft-heap-types=on; tests/programs/heaptypes):
// one generic list holds connections and jobs, made by makers called
// through a table of pointers and added to a list chosen at run time, so no
// record can tell which value is which, and a second list holds the address
// of a struct inside each connection. Built without tags, graft diff can
// only ask (and says the tags would settle it); built with them, each value
// is told by its block's tag at the commit: the connections grow and move,
// the interior words follow `st` to its new place inside them, nothing is
// declared, and the way back (a patch from the new build to the old one)
// lands too, on the tags the commit moved with the objects.
// -rdynamic, as redis links: the flags of regrow.c's fresh functions become
// local symbols of the executable, which a patch cannot resolve.
std::vector<std::string> heaptypes_flags(bool tags) {
  std::vector<std::string> flags = {"-I" + (programs_dir() / "heaptypes" / "common").string(), "-rdynamic"};
  if (tags) flags.push_back("--graft-heap-types=on");
  return flags;
}

TEST_F(MemberFacts, ValuesOnlyTheHeapsTypeTagsTellApartLandWithNoDeclaration) {
  {
    const auto p1 = build_program(dir, "heaptypes", "v1", heaptypes_flags(false));
    const auto p2 = build_program(dir, "heaptypes", "v2", heaptypes_flags(false));
    auto asked = graft({"diff", p1.string(), p2.string(), "-o", (dir.path() / "plain.graft").string()});
    EXPECT_EQ(asked.exit_code, 1);
    EXPECT_TRUE(one_line(asked.err)) << asked.err;
    for (const char* expected : {"struct lnode.value", "untyped members need none where the running build was made "
                                 "with graft-cc --graft-heap-types=on"})
      EXPECT_NE(asked.err.find(expected), std::string::npos) << expected << "\n" << asked.err;
  }
  const auto v1 = build_program(dir, "heaptypes", "v1", heaptypes_flags(true));
  const auto v2 = build_program(dir, "heaptypes", "v2", heaptypes_flags(true));
  const auto made = diff(dir, v1, v2, "heaptypes.graft", {"--explain"});
  EXPECT_NE(made.out.find("struct lnode.value is told at the commit by the heap's type tags"), std::string::npos)
      << made.out;
  EXPECT_NE(made.out.find("heap type tags: the old build tags 3 structs, 3 of them told by their tags"),
            std::string::npos) << made.out;
  const auto back = diff(dir, v2, v1, "back.graft");

  Process target({v1.string()});
  // A connection closed before the update leaves no tag behind (the check of every tagged one would refuse).
  for (const char* command : {"add 3", "open 4", "close"}) target.ask(command);
  // Garbage that looks like an address into another connection, in a member only numbers go to and in text.
  ASSERT_EQ(target.ask("garble"), "garbled");
  // A thread holds the newest connection in a packed struct on its stack, off the 8-byte grid.
  ASSERT_EQ(target.ask("park"), "parked");
  const std::string stats = target.ask("stats");
  EXPECT_EQ(stats, "102/2 101/1 100/0");
  ASSERT_TRUE(wait_until([&] { return target.ask("walks") == "walking"; }, std::chrono::seconds(20)));
  auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const auto summary = nlohmann::json::parse(applied.out);
  EXPECT_EQ(summary.value("objects_moved", -1), 3) << summary;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"add 3", "open 4", "close", "dump"}));
  EXPECT_EQ(target.ask("stats"), stats);  // the words into `st` followed it to its new place
  EXPECT_EQ(target.ask("unpark"), "102");  // the word off the grid followed the connection
  target.ask("walks");
  EXPECT_TRUE(wait_until([&] { return target.ask("walks") == "walking"; }, std::chrono::seconds(20)));
  // The new code's connections join the moved ones; then the way back, where the moved ones carry their tags.
  for (const char* command : {"open 2", "close"}) target.ask(command);
  auto reverted = graft({"apply", std::to_string(target.pid()), back.patch.string(), "--json"});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("dump"), fresh_answer(v1, {"add 3", "open 4", "close", "open 2", "close", "dump"}));
  EXPECT_EQ(target.ask("stats"), "104/1 102/2 101/1 100/0");
  EXPECT_TRUE(target.alive());
}

// What the tags cannot vouch for is refused at the commit, and the process
// runs on as it was: a connection kept only as an integer (tagged, but no
// pointer graft follows reaches it), and a process that could not reserve
// the table (a limit on its address space).
TEST_F(MemberFacts, WhatTheHeapsTypeTagsCannotVouchForIsRefused) {
  const auto v1 = build_program(dir, "heaptypes", "v1", heaptypes_flags(true));
  const auto v2 = build_program(dir, "heaptypes", "v2", heaptypes_flags(true));
  const auto made = diff(dir, v1, v2, "heaptypes.graft");
  {
    Process target({v1.string()});
    for (const char* command : {"add 1", "open 3", "hide"}) target.ask(command);
    const std::string before = target.ask("dump");
    auto refused = graft({"apply", std::to_string(target.pid()), made.patch.string()});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(one_line(refused.err)) << refused.err;
    for (const char* expected : {"has a struct conn at 0x", "(its heap type tag says so) that no pointer graft follows "
                                 "reaches", "nothing was changed"})
      EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
    EXPECT_EQ(target.ask("v"), "1");
    EXPECT_EQ(target.ask("dump"), before);
  }
  // 2 GiB of address space: the program runs, its 16 TiB table cannot be reserved, no block is tagged.
  Process limited({"/bin/sh", "-c", "ulimit -v 2097152 && exec " + v1.string()});
  limited.ask("open 2");
  const std::string before = limited.ask("dump");
  auto refused = graft({"apply", std::to_string(limited.pid()), made.patch.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  for (const char* expected : {"the process could not reserve their table", "nothing was changed"})
    EXPECT_NE(refused.err.find(expected), std::string::npos) << expected << "\n" << refused.err;
  EXPECT_EQ(limited.ask("v"), "1");
  EXPECT_EQ(limited.ask("dump"), before);
}

// Where the records' names are not enough (tests/programs/homonyms):
// tally.c's own struct conn, made through an allocator table (hiredis's
// hiredisAllocFns: tagged while nothing that runs writes the table), must
// not make main.c's connections untold (as hiredis's struct dict beside
// redis's), its tags apart by their shape; nor must a struct whose tag ID is struct conn's where its tag
// never fires (a cast of what a function that is not fresh returns), nor a
// global array of jobs cast in an initializer (its own storage). Built with
// tags, the release that grows main.c's connections lands with no
// declaration, each of the two structs conn kept as it is, and the void * of
// a union of it and numbers (redis's dictEntry.v) follows its connection, as
// does a union of a pointer to one, a number and a void * (CallReply.val).
TEST_F(MemberFacts, StructsOfOneNameInTwoFilesAreToldApartAndTheUpdateLands) {
  const std::vector<std::string> flags = {"-I" + (programs_dir() / "homonyms" / "common").string(),
                                          "--graft-heap-types=on"};
  const auto v1 = build_program(dir, "homonyms", "v1", flags);
  const auto v2 = build_program(dir, "homonyms", "v2", flags);
  // load_item returns a job or a raw buffer: a cast of its result is no proof of a tagged job.
  auto asked = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "asked.graft").string()});
  EXPECT_EQ(asked.exit_code, 1);
  EXPECT_TRUE(one_line(asked.err)) << asked.err;
  EXPECT_NE(asked.err.find("struct job (a cast to it in load_job, made from what malloc returns (among what load_item "
                           "returns); if what load_item returns is always one made elsewhere where it is cast to "
                           "struct job, GRAFT_RETYPES(load_item, job); says so for every caller)"),
            std::string::npos) << asked.err;
  const auto retypes = (programs_dir() / "homonyms" / "transform" / "retypes.c").string();
  const auto made = diff(dir, v1, v2, "homonyms.graft", {"--explain", "--transform", retypes});
  ASSERT_FALSE(made.patch.empty());
  for (const char* expected : {"struct lnode.value is told at the commit by the heap's type tags",
                               "struct entry.v.val, recorded by graft-cc to hold only struct conn *",
                               "tagged   struct slot.u (a union), told by the heap's type tags: its word at offset 8 "
                               "followed as a struct conn * where the block it points to is tagged as one",
                               "struct slot.u (a union's void * at offset 8) is told at the commit by the heap's type tags",
                               "the old build tags 6 structs, 5 of them told by their tags"})
    EXPECT_NE(made.out.find(expected), std::string::npos) << expected << "\n" << made.out;
  {
    // Where the program calls the allocator table's setter, its slot may hold anything: tally.c's
    // connections are not told by their tags, and what may hold one is asked about.
    std::vector<std::string> setting = flags;
    setting.push_back("-DSET_ALLOCATORS");
    auto asked = graft({"diff", build_program(dir, "homonyms", "v1", setting).string(),
                        build_program(dir, "homonyms", "v2", setting).string(), "-o",
                        (dir.path() / "setting.graft").string(), "--transform", retypes});
    EXPECT_EQ(asked.exit_code, 1);
    EXPECT_TRUE(one_line(asked.err)) << asked.err;
    EXPECT_NE(asked.err.find("struct conn@tally.c leads to a change (a cast to it of what tally_malloc returns"),
              std::string::npos) << asked.err;
  }

  const std::vector<std::string> setup = {"open 3", "add 2", "load", "tally 4"};
  Process target({v1.string()});
  for (const auto& command : setup) target.ask(command);
  auto applied = graft({"apply", std::to_string(target.pid()), made.patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("objects_moved", -1), 3) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  for (const char* command : {"open 1", "tally 1"}) target.ask(command);
  EXPECT_EQ(target.ask("dump"), fresh_answer(v2, {"open 3", "add 2", "load", "tally 4", "open 1", "tally 1", "dump"}));
  EXPECT_TRUE(target.alive());
}

}  // namespace
}  // namespace graft::test
