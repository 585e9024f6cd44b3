// Unit tests of graft-cc's reading of compiler command lines (no compiler run).
#include "command_line.h"
#include "link_map.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace graft::driver {
namespace {

CommandLine parse(std::vector<std::string> args) { return parse_command_line(std::move(args)); }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(DriverOptions, ConsumesGraftOptions) {
  std::vector<std::string> args = {"-c", "--graft-verbose", "a.c", "--graft-policy=fast"};
  auto options = take_driver_options(args, nullptr);
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->policy, "fast");
  EXPECT_TRUE(options->verbose);
  EXPECT_FALSE(options->help);
  EXPECT_EQ(args, (std::vector<std::string>{"-c", "a.c"}));
}

TEST(DriverOptions, PolicyDefaultsToBalancedAndComesFromEnvironment) {
  std::vector<std::string> args = {"-c", "a.c"};
  EXPECT_EQ(take_driver_options(args, nullptr)->policy, "balanced");
  EXPECT_EQ(take_driver_options(args, "")->policy, "balanced");
  EXPECT_EQ(take_driver_options(args, "strict")->policy, "strict");
  EXPECT_EQ(take_driver_options(args, "fast")->policy, "fast");
  std::vector<std::string> with_option = {"--graft-policy=strict"};
  EXPECT_EQ(take_driver_options(with_option, "fast")->policy, "strict");  // the option wins
}

TEST(DriverOptions, MemberFactsAreRecordedUnlessTurnedOff) {
  std::vector<std::string> args = {"-c", "a.c"};
  EXPECT_TRUE(take_driver_options(args, nullptr)->member_facts);
  args = {"--graft-member-facts=off", "-c", "a.c"};
  auto options = take_driver_options(args, nullptr);
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_FALSE(options->member_facts);
  EXPECT_EQ(args, (std::vector<std::string>{"-c", "a.c"}));
}

TEST(DriverOptions, RejectsBadValuesAndUnknownOptions) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--graft-policy=bogus"},
                                        std::vector<std::string>{"--graft-policy"},
                                        std::vector<std::string>{"--graft-frobnicate"},
                                        std::vector<std::string>{"--graft-member-facts=maybe"}}) {
    auto options = take_driver_options(args, nullptr);
    ASSERT_FALSE(options.ok()) << args[0];
    EXPECT_EQ(options.error().message.find('\n'), std::string::npos);
  }
  std::vector<std::string> args = {"-c", "a.c"};
  EXPECT_FALSE(take_driver_options(args, "bogus").ok());
}

TEST(CommandLine, PassThroughModes) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--version"}, {"-v"}, {"-dumpversion"}, {"-dumpmachine"}, {"-print-search-dirs"},
           {"-print-prog-name=ld"}, {"--print-file-name=libc.so"}, {"-###", "a.c"}, {"-E", "a.c"},
           {"-M", "a.c"}, {"-MM", "a.c", "-c"}, {"-fsyntax-only", "a.c"}, {"-x", "c", "-E", "-"},
           {"-E", "-dM", "-x", "c", "/dev/null"}, {}}) {
    EXPECT_EQ(parse(args).mode, Mode::PassThrough) << ::testing::PrintToString(args);
  }
}

TEST(CommandLine, CompileModes) {
  EXPECT_EQ(parse({"-c", "a.c"}).mode, Mode::Compile);
  EXPECT_EQ(parse({"-S", "a.c"}).mode, Mode::Compile);
  EXPECT_EQ(parse({"-MD", "-MF", "a.d", "-c", "a.c", "-o", "a.o"}).mode, Mode::Compile);
  EXPECT_EQ(parse({"-v", "-c", "a.c"}).mode, Mode::Compile);
}

TEST(CommandLine, LinkModes) {
  CommandLine exe = parse({"a.o", "b.o", "-o", "prog"});
  EXPECT_EQ(exe.mode, Mode::Link);
  EXPECT_TRUE(exe.executable);
  EXPECT_EQ(exe.output, "prog");
  EXPECT_FALSE(parse({"-shared", "a.o", "-o", "liba.so"}).executable);
  EXPECT_FALSE(parse({"-r", "a.o", "-o", "all.o"}).executable);
  EXPECT_FALSE(parse({"-Wl,-r", "a.o", "-o", "all.o"}).executable);
  EXPECT_FALSE(parse({"-Xlinker", "-shared", "a.o"}).executable);
  EXPECT_FALSE(parse({"a.o"}).output.has_value());  // a.out
  // Executables and shared libraries are recorded; relocatable links are not.
  EXPECT_TRUE(exe.records_build());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-shared", "a.o", "-o", "liba.so"}, {"-Wl,-shared", "a.o"}, {"-Xlinker", "-shared", "a.o"}}) {
    EXPECT_TRUE(parse(args).shared_library) << args[0];
    EXPECT_TRUE(parse(args).records_build()) << args[0];
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-r", "a.o", "-o", "all.o"}, {"-Wl,-r", "a.o"}, {"-shared", "-r", "a.o"}, {"-c", "a.c"}})
    EXPECT_FALSE(parse(args).records_build()) << args[0];
}

TEST(CommandLine, OptionValuesAreNotInputs) {
  CommandLine cl = parse({"-I", "inc", "-include", "pre.h", "-MF", "x.d", "-D", "X=1", "-Xlinker", "foo.o", "-l",
                          "m", "-o", "prog", "-isystem", "sys", "-mllvm", "-x86-asm-syntax=intel", "main.c", "-ofoo"});
  ASSERT_EQ(cl.inputs.size(), 1u);
  EXPECT_EQ(cl.inputs[0].path, "main.c");
  EXPECT_EQ(cl.inputs[0].kind, InputKind::Source);
  EXPECT_EQ(cl.output, "foo");  // the last -o wins, joined form too
}

TEST(CommandLine, ClassifiesInputs) {
  CommandLine cl = parse({"a.c", "b.cpp", "c.o", "d.s", "e.S", "libx.a", "liby.so", "f.i", "g.cc", "h.cxx", "i.C", "-x",
                          "c", "weird", "-x", "none", "k.o"});
  std::vector<InputKind> kinds;
  for (const Input& input : cl.inputs) kinds.push_back(input.kind);
  EXPECT_EQ(kinds, (std::vector<InputKind>{InputKind::Source, InputKind::Source, InputKind::Object,
                                           InputKind::Assembly, InputKind::Assembly, InputKind::Other,
                                           InputKind::Other, InputKind::Source, InputKind::Source,
                                           InputKind::Source, InputKind::Source, InputKind::Source,
                                           InputKind::Object}));
  EXPECT_EQ(cl.inputs[11].language, "c");
}

TEST(CommandLine, NoticesBuildIdAndResponseFiles) {
  EXPECT_TRUE(parse({"a.o", "-Wl,--build-id=md5"}).has_build_id);
  EXPECT_TRUE(parse({"a.o", "-Wl,-O1,--build-id"}).has_build_id);
  EXPECT_TRUE(parse({"a.o", "-Xlinker", "--build-id=none"}).has_build_id);
  EXPECT_FALSE(parse({"a.o"}).has_build_id);
  CommandLine rsp = parse({"@objects.rsp", "-o", "prog"});
  EXPECT_TRUE(rsp.response_file);
  EXPECT_EQ(rsp.mode, Mode::Link);
  EXPECT_TRUE(rsp.inputs.empty());
}

TEST(CommandLine, StrippingLinkOptionsAreTakenOut) {
  std::vector<std::string> args = {"-O2", "-s", "a.o", "-Wl,-O1,--strip-all,-z,now", "-Wl,-S", "-Xlinker",
                                   "--strip-debug", "-Xlinker", "-Map", "-o", "prog", "-S"};
  const auto dropped = take_strip_options(args);
  EXPECT_EQ(dropped, (std::vector<std::string>{"-s", "-Wl,--strip-all", "-Wl,-S", "-Xlinker --strip-debug"}));
  // -S alone is clang's "assembly only", not the linker's.
  EXPECT_EQ(args, (std::vector<std::string>{"-O2", "a.o", "-Wl,-O1,-z,now", "-Xlinker", "-Map", "-o", "prog", "-S"}));
  std::vector<std::string> plain = {"-c", "a.c", "-o", "-s"};
  EXPECT_TRUE(take_strip_options(plain).empty());  // an option's value is not an option
  EXPECT_EQ(plain.size(), 4u);
  const std::string warning = strip_warning(dropped, "prog");
  EXPECT_EQ(warning.find('\n'), std::string::npos);
  EXPECT_NE(warning.find("ignoring -s -Wl,--strip-all"), std::string::npos) << warning;
  EXPECT_NE(warning.find("objcopy --strip-debug prog prog.stripped"), std::string::npos) << warning;
}

TEST(CommandLine, DirectArgumentsAddGraftFlagsOnlyWhereTheyApply) {
  const std::string plugin = "/p/graft-pass.so";
  auto compile = direct_arguments(parse({"-O0", "-c", "a.c"}), Toolchain::clang(plugin));
  for (const char* flag : kGraftFlags) EXPECT_TRUE(contains(compile, flag)) << flag;
  EXPECT_TRUE(contains(compile, "-fpass-plugin=/p/graft-pass.so"));
  EXPECT_TRUE(contains(compile, "-O0"));
  EXPECT_FALSE(contains(compile, kBuildIdFlag));

  auto assembly = direct_arguments(parse({"-c", "a.S"}), Toolchain::clang(plugin));
  EXPECT_EQ(assembly, (std::vector<std::string>{"-c", "a.S"}));

  auto passthrough = direct_arguments(parse({"-E", "a.c"}), Toolchain::clang(plugin));
  EXPECT_EQ(passthrough, (std::vector<std::string>{"-E", "a.c"}));

  auto link = direct_arguments(parse({"a.o", "-o", "conftest"}), Toolchain::clang(plugin));
  EXPECT_EQ(link, (std::vector<std::string>{"a.o", "-o", "conftest", kBuildIdFlag}));
  auto own_id = direct_arguments(parse({"a.o", "-Wl,--build-id=uuid"}), Toolchain::clang(plugin));
  EXPECT_FALSE(contains(own_id, kBuildIdFlag));
  auto shared = direct_arguments(parse({"-shared", "-fPIC", "a.c", "-o", "liba.so"}), Toolchain::clang(plugin));
  EXPECT_TRUE(contains(shared, "-fpatchable-function-entry=16,14"));
  EXPECT_TRUE(contains(shared, kBuildIdFlag));  // recorded by its build-id, like an executable
  auto relocatable = direct_arguments(parse({"-r", "a.o", "-o", "all.o"}), Toolchain::clang(plugin));
  EXPECT_FALSE(contains(relocatable, kBuildIdFlag));
}

TEST(CommandLine, SplitsALinkWithSources) {
  const std::string plugin = "/p/graft-pass.so";
  CommandLine cl = parse({"-O2", "-Wall", "-o", "prog", "first.o", "-x", "c", "gen", "-x", "none", "main.c",
                          "-lm", "-Wl,--as-needed", "libz.a", "last.o"});
  ASSERT_EQ(cl.inputs.size(), 5u);  // -lm is not an input: clang places it, not the driver

  auto gen = source_compile_arguments(cl, cl.inputs[1], "/t/0/gen.o", Toolchain::clang(plugin));
  EXPECT_EQ(std::vector<std::string>(gen.end() - 6, gen.end()),
            (std::vector<std::string>{"-c", "-x", "c", "gen", "-o", "/t/0/gen.o"}));
  auto main = source_compile_arguments(cl, cl.inputs[2], "/t/1/main.o", Toolchain::clang(plugin));
  EXPECT_EQ(std::vector<std::string>(main.end() - 4, main.end()),
            (std::vector<std::string>{"-c", "main.c", "-o", "/t/1/main.o"}));
  for (const char* dropped : {"prog", "first.o", "-lm", "-Wl,--as-needed", "libz.a", "last.o"})
    EXPECT_FALSE(contains(main, dropped)) << dropped;
  EXPECT_TRUE(contains(main, "-O2"));
  EXPECT_TRUE(contains(main, "-Wall"));
  EXPECT_TRUE(contains(main, "-Qunused-arguments"));
  EXPECT_TRUE(contains(main, "-fpass-plugin=/p/graft-pass.so"));

  const std::vector<std::string> objects = {"/t/0/gen.o", "/t/1/main.o"};
  EXPECT_EQ(link_arguments(cl, objects),
            (std::vector<std::string>{"-O2", "-Wall", "-o", "prog", "first.o", "/t/0/gen.o", "/t/1/main.o", "-lm",
                                      "-Wl,--as-needed", "libz.a", "last.o", kBuildIdFlag}));
  EXPECT_EQ(linked_objects(cl, objects),
            (std::vector<std::string>{"first.o", "/t/0/gen.o", "/t/1/main.o", "last.o"}));
}

TEST(CommandLine, KeepsTheDependencyFileOfALinkWithSources) {
  CommandLine cl = parse({"-MMD", "-o", "out/prog.bin", "main.c"});
  auto args = source_compile_arguments(cl, cl.inputs[0], "/t/0/main.o", Toolchain::clang("/p.so"));
  auto mf = std::find(args.begin(), args.end(), "-MF");
  ASSERT_NE(mf, args.end());
  EXPECT_EQ(*(mf + 1), "out/prog.d");
  EXPECT_EQ(*(mf + 3), "out/prog.bin");

  CommandLine no_output = parse({"-MD", "src/main.c"});
  args = source_compile_arguments(no_output, no_output.inputs[0], "/t/0/main.o", Toolchain::clang("/p.so"));
  mf = std::find(args.begin(), args.end(), "-MF");
  ASSERT_NE(mf, args.end());
  EXPECT_EQ(*(mf + 1), "main.d");
  EXPECT_EQ(*(mf + 3), "main.o");
}

TEST(CommandLine, ProbesAreNotRecorded) {
  const CommandLine link = parse({"main.o", "util.o"});
  EXPECT_FALSE(worth_recording(link, "/src/pkg/conftest"));
  EXPECT_FALSE(worth_recording(link, "/dev/null"));
  EXPECT_FALSE(worth_recording(link, "/b/CMakeFiles/CMakeScratch/TryCompile-x/cmTC_1a2b3"));
  EXPECT_FALSE(worth_recording(link, "/b/CMakeFiles/3.25.1/CompilerIdC/a.out"));
  EXPECT_FALSE(worth_recording(link, "/b/meson-private/sanitycheckc.exe"));
  EXPECT_FALSE(worth_recording(parse({"-g", "conftest.c"}), "/src/pkg/a.out"));  // autoconf: the compiler works
  EXPECT_FALSE(worth_recording(parse({"conftest.o", "-lm"}), "/src/pkg/a.out"));
  EXPECT_TRUE(worth_recording(link, "/src/pkg/server"));
  EXPECT_TRUE(worth_recording(link, "/src/pkg/a.out"));
  EXPECT_TRUE(worth_recording(link, "/src/conftest-tool/prog"));
}

// The linker's map names the archive members it took: GNU ld and gold in a
// list of their own (a long name pushes the reason to the next line; GNU ld
// names a thin archive's member by its path), lld as each section's input.
TEST(LinkMap, MembersFromGnuLdGoldAndLld) {
  const std::string gnu_ld =
      "Archive member included to satisfy reference by file (symbol)\n\n"
      "lib/libfoo.a(a.o)             main.o (foo)\n"
      "./libfoo.a(a_member_with_a_very_long_name.o)\n"
      "                              main.o (bar)\n"
      "lib/b.o                       main.o (baz)\n"
      "lib/libfoo.a(c.o)             (--whole-archive)\n\n"
      "Merging program properties\n\n"
      "Removed property 0xc0000002 to merge /lib/x86_64-linux-gnu/Scrt1.o (not found) and x.o (0x3)\n";
  EXPECT_EQ(archive_members_in_map(gnu_ld),
            (std::vector<MapMember>{{"lib/libfoo.a", "a.o"}, {"./libfoo.a", "a_member_with_a_very_long_name.o"},
                                    {"", "lib/b.o"}, {"lib/libfoo.a", "c.o"}}));
  const std::string gold =
      "Archive member included because of file (symbol)\n\n"
      "lib/libthin.a(lib/a.o)        main.o (foo)\n\n"
      "Discarded input sections\n\n .note.GNU-stack\n";
  EXPECT_EQ(archive_members_in_map(gold), (std::vector<MapMember>{{"lib/libthin.a", "lib/a.o"}}));
  const std::string lld =
      "             VMA              LMA     Size Align Out     In      Symbol\n"
      "             620              620       20     1         lib/libfoo.a(a.o):(.eh_frame+0x18)\n"
      "            1780             1780       17    16         main.o:(.text)\n"
      "            1790             1790        b    16         lib/libfoo.a(a.o):(.text)\n"
      "            17a0             17a0        b    16         lib/libfoo.a(b.o):(.text)\n"
      "            17a0             17a0        0     1                 bar\n";
  EXPECT_EQ(archive_members_in_map(lld), (std::vector<MapMember>{{"lib/libfoo.a", "a.o"}, {"lib/libfoo.a", "b.o"}}));
  EXPECT_TRUE(archive_members_in_map("").empty());
}

TEST(LinkMap, LibrariesDirectoriesAndTheUsersMap) {
  const CommandLine cl = parse({"main.o", "-L", "lib", "-Lother", "-lfoo", "-l", "bar", "-l:libbaz.a", "libq.a",
                                "-Wl,--gc-sections,-Map,out.map"});
  const auto libraries = library_options(cl);
  ASSERT_EQ(libraries.size(), 3u);
  EXPECT_EQ(libraries[0].name, "foo");
  EXPECT_EQ(libraries[0].arg, 4u);
  EXPECT_EQ(libraries[1].name, "bar");
  EXPECT_EQ(libraries[2].name, ":libbaz.a");
  EXPECT_EQ(archive_file_name("foo"), "libfoo.a");
  EXPECT_EQ(archive_file_name(":libbaz.a"), "libbaz.a");
  EXPECT_EQ(library_directories(cl), (std::vector<std::string>{"lib", "other"}));
  EXPECT_EQ(user_map_file(cl), "out.map");
  EXPECT_EQ(user_map_file(parse({"main.o", "-Xlinker", "-Map=x.map"})), "x.map");
  EXPECT_EQ(user_map_file(parse({"main.o", "-Wl,-Map=y.map"})), "y.map");
  EXPECT_FALSE(user_map_file(parse({"main.o", "-lfoo"})));
  EXPECT_TRUE(may_link_archives(cl));
  EXPECT_TRUE(may_link_archives(parse({"main.o", "libq.a"})));
  EXPECT_FALSE(may_link_archives(parse({"main.o", "util.o"})));
}

TEST(CommandLine, ClangOnlyWarningsStayWarningsUnderWerror) {
  EXPECT_TRUE(clang_only_warning_flags(parse({"-c", "a.c", "-Wall"})).empty());
  const auto flags = clang_only_warning_flags(parse({"-c", "a.c", "-Werror", "-Werror=self-assign"}));
  EXPECT_TRUE(contains(flags, "-Wno-error=enum-conversion"));
  EXPECT_TRUE(contains(flags, "-Wno-error=unknown-warning-option"));
  EXPECT_FALSE(contains(flags, "-Wno-error=self-assign"));  // asked for by name
  const auto compile = direct_arguments(parse({"-Werror", "-c", "a.c"}), Toolchain::clang("/p/graft-pass.so"));
  EXPECT_TRUE(contains(compile, "-Wno-error=enum-conversion"));
  const CommandLine link = parse({"-Werror", "a.c", "-o", "prog"});
  EXPECT_TRUE(contains(source_compile_arguments(link, link.inputs[0], "/t/a.o", Toolchain::clang("/p/graft-pass.so")),
                       "-Wno-error=enum-conversion"));
}

TEST(CommandLine, ShellQuote) {
  EXPECT_EQ(shell_quote({"clang", "-DX=\"a b\"", "it's", "-o", "out"}), "clang '-DX=\"a b\"' 'it'\\''s' -o out");
}

}  // namespace
}  // namespace graft::driver
