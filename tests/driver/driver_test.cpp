// End-to-end tests of graft-cc / graft-c++ and the pass plugin: real
// compilations with the pinned clang, objects and executables inspected with
// graft's ELF reader, builds read back from a private store.
#include <elf.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "store/store.h"

namespace {
namespace fs = std::filesystem;

struct Output {
  int status = -1;  // exit status; 128+n for signal n; -1 if it could not run
  std::string text; // stdout and stderr
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

size_t count_lines(const std::string& text) {
  return size_t(std::count(text.begin(), text.end(), '\n')) + (!text.empty() && text.back() != '\n' ? 1 : 0);
}

class Driver : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "graft-driver-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store_ = dir_ / "store";
    tmp_ = dir_ / "tmp";
    fs::create_directories(tmp_);
    // load_build() in this process reads the same store.
    setenv("GRAFT_STORE", store_.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs a shell command in the test directory with a private store and
  // TMPDIR, bounded in time.
  Output sh(const std::string& command, int timeout_seconds = 120) const {
    const std::string script = "cd " + quote(dir_.string()) + " && GRAFT_STORE=" + quote(store_.string()) +
                               " TMPDIR=" + quote(tmp_.string()) + " timeout -k 5 " +
                               std::to_string(timeout_seconds) + " sh -c " + quote(command) + " 2>&1";
    Output out;
    FILE* pipe = popen(script.c_str(), "r");
    if (pipe == nullptr) return out;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.text.append(buffer, n);
    const int status = pclose(pipe);
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    return out;
  }

  static std::string cc() { return quote(GRAFT_TEST_CC); }
  static std::string gcc() { return quote(GRAFT_TEST_GCC); }
  static std::string cxx() { return quote(GRAFT_TEST_CXX); }

  std::vector<fs::path> store_entries() const {
    std::vector<fs::path> out;
    if (!fs::exists(store_)) return out;
    for (const auto& entry : fs::directory_iterator(store_)) out.push_back(entry.path());
    return out;
  }

  bool tmp_is_empty() const { return fs::is_empty(tmp_); }

  fs::path dir_, store_, tmp_;
};

const graft::ElfSymbol* find_symbol(const graft::ElfFile& elf, const std::string& name) {
  for (const auto& symbol : elf.symbols())
    if (symbol.name == name) return &symbol;
  return nullptr;
}

// Whether section `from` has a relocation that targets the function `callee`
// (through its own symbol or the symbol of its section).
bool calls(const graft::ElfFile& elf, const std::string& from, const graft::ElfSymbol& callee) {
  const graft::ElfSection* section = elf.section(from);
  if (section == nullptr) return false;
  for (const auto& relocation : elf.relocations(section->index)) {
    const auto& target = elf.symbols().at(relocation.symbol);
    if (target.name == callee.name) return true;
    if (target.type == STT_SECTION && target.shndx == callee.shndx) return true;
  }
  return false;
}

// (a) graft-cc -c: 14 bytes of NOP before each function, a 2-byte NOP at its
// entry, __patchable_function_entries, one section per function, DWARF.
TEST_F(Driver, CompileAddsPatchableEntries) {
  write_text(dir_ / "t.c", "int twice(int x) { return 2 * x; }\nint data = 1;\n");
  for (const char* level : {"-O0", "-O2"}) {
    SCOPED_TRACE(level);
    Output out = sh(cc() + " " + level + " -c t.c -o t.o");
    ASSERT_EQ(out.status, 0) << out.text;
    auto elf = graft::ElfFile::open(dir_ / "t.o");
    ASSERT_TRUE(elf.ok()) << elf.error().message;
    EXPECT_NE((*elf)->section("__patchable_function_entries"), nullptr);
    EXPECT_NE((*elf)->section(".debug_info"), nullptr);
    EXPECT_NE((*elf)->section(".data.data"), nullptr);  // -fdata-sections
    const graft::ElfSymbol* twice = find_symbol(**elf, "twice");
    ASSERT_NE(twice, nullptr);
    const auto& text = (*elf)->sections().at(twice->shndx);
    EXPECT_EQ(text.name, ".text.twice");  // -ffunction-sections
    ASSERT_GE(twice->value, 14u);
    ASSERT_GE(text.data.size(), twice->value + 2);
    for (uint64_t i = twice->value - 14; i < twice->value; ++i) EXPECT_EQ(text.data[i], 0x90) << "pad byte " << i;
    EXPECT_EQ(text.data[twice->value], 0x66);
    EXPECT_EQ(text.data[twice->value + 1], 0x90);
  }
  // The same, as objdump shows it.
  Output dump = sh("objdump -d t.o");
  ASSERT_EQ(dump.status, 0) << dump.text;
  EXPECT_NE(dump.text.find("66 90"), std::string::npos) << dump.text;
  EXPECT_TRUE(store_entries().empty());  // nothing recorded for a compilation
}

// (b) Compile and link in one command: the build is recorded under the
// binary's build-id with its objects, the temporary objects are gone.
TEST_F(Driver, CompileAndLinkInOneCommandRecordsTheBuild) {
  write_text(dir_ / "main.c", "#include <stdio.h>\nint add(int, int);\nint main(void) { printf(\"%d\\n\", add(2, 3)); return 0; }\n");
  write_text(dir_ / "src/add.c", "int add(int a, int b) { return a + b; }\n");
  Output out = sh(cc() + " -O2 -Wall -Werror main.c src/add.c -lm -o prog && ./prog");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_EQ(out.text, "5\n");
  EXPECT_TRUE(tmp_is_empty());

  auto id = graft::read_build_id(dir_ / "prog");
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(fs::exists(store_ / *id / "build.json"));
  auto record = graft::load_build(*id);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->build_id, *id);
  EXPECT_EQ(fs::path(record->output), fs::canonical(dir_ / "prog"));
  EXPECT_EQ(record->compiler, GRAFT_TEST_CLANG);
  EXPECT_EQ(record->policy, "balanced");
  ASSERT_FALSE(record->link_args.empty());
  EXPECT_EQ(record->link_args.front(), GRAFT_TEST_CLANG);
  EXPECT_NE(std::find(record->link_args.begin(), record->link_args.end(), "-Wl,--build-id=sha1"),
            record->link_args.end());
  ASSERT_EQ(record->objects.size(), 2u);
  EXPECT_EQ(record->objects[0].filename(), "0000-main.o");
  EXPECT_EQ(record->objects[1].filename(), "0001-add.o");
  for (const auto& object : record->objects) {
    auto elf = graft::ElfFile::open(object);
    ASSERT_TRUE(elf.ok()) << elf.error().message;
    EXPECT_EQ((*elf)->type(), ET_REL);
    EXPECT_NE((*elf)->section("__patchable_function_entries"), nullptr) << object;
  }
}

// graft-gcc: gcc 12 with the graft flags and the policy's options, its
// entries two 1-byte NOPs after the 14 of the pad, and the build recorded
// as graft-cc records it (under the binary's build-id, gcc the compiler).
TEST_F(Driver, GccBuildsWithPatchableEntriesAndIsRecorded) {
  write_text(dir_ / "main.c", "#include <stdio.h>\nint add(int, int);\nint main(void) { printf(\"%d\\n\", add(2, 3)); return 0; }\n");
  write_text(dir_ / "add.c", "int add(int a, int b) { return a + b; }\n");
  Output out = sh(gcc() + " --graft-verbose --graft-policy=strict -O2 -Wall -Werror main.c add.c -o prog && ./prog");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_NE(out.text.find(std::string("GRAFT_POLICY=strict ") + GRAFT_TEST_GCC_COMPILER + " "), std::string::npos) << out.text;
  for (const char* flag : {"-fpatchable-function-entry=16,14", "-fno-ipa-icf", "-fno-reorder-blocks-and-partition",
                           "-flive-patching=inline-only-static", "-fno-inline"})
    EXPECT_NE(out.text.find(flag), std::string::npos) << flag << "\n" << out.text;
  EXPECT_EQ(out.text.find("-fpass-plugin"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("-Qunused-arguments"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("\n5\n"), std::string::npos) << out.text;

  auto id = graft::read_build_id(dir_ / "prog");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto record = graft::load_build(*id);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->compiler, GRAFT_TEST_GCC_COMPILER);
  EXPECT_EQ(record->policy, "strict");
  ASSERT_EQ(record->objects.size(), 2u);
  auto elf = graft::ElfFile::open(record->objects[1]);
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  const graft::ElfSymbol* add = find_symbol(**elf, "add");
  ASSERT_NE(add, nullptr);
  const auto& text = (*elf)->sections().at(add->shndx);
  EXPECT_EQ(text.name, ".text.add");
  ASSERT_GE(add->value, 14u);
  ASSERT_GE(text.data.size(), add->value + 2);
  for (uint64_t i = add->value - 14; i < add->value + 2; ++i) EXPECT_EQ(text.data[i], 0x90) << "byte " << i;

  Output help = sh(gcc() + " --graft-help");
  ASSERT_EQ(help.status, 0) << help.text;
  EXPECT_NE(help.text.find("-flive-patching=inline-clone"), std::string::npos) << help.text;
}

// graft-gcc's balanced policy: its plugin keeps every call of main, of a
// service loop (a read() in a loop) and of what calls it a call, a static
// inline one included, where plain gcc (the fast policy) inlines them all
// into main; always_inline stays inlined.
TEST_F(Driver, GccBalancedInlinesNothingIntoMainOrAServiceLoop) {
  write_text(dir_ / "main.c",
             "#include <stdio.h>\n#include <unistd.h>\n"
             "static int helper(int x) { return x * 3 + 1; }\n"
             "static inline int ihelper(int x) { return x ^ 5; }\n"
             "static inline __attribute__((always_inline)) int ahelper(int x) { return x + 7; }\n"
             "static void serve(void) { char b[8]; while (read(0, b, 8) > 0) printf(\"%d\\n\", helper(b[0]) + ihelper(b[1])); }\n"
             "static void* start(void* a) { serve(); return a; }\n"
             "int main(int argc, char** argv) { (void)argv; start(0); printf(\"%d %d %d\\n\", helper(argc), ihelper(argc), ahelper(argc)); return 0; }\n");
  // The relocations of a function's calls: "helper ihelper start" for main's.
  const std::string calls = " -c main.c -o main.o && for f in main serve; do printf '%s:' $f; "
                            "objdump -dr main.o | awk \"/<$f>:/,/^\\$/\" | grep -o '\\.text\\.[a-z]*helper' | sort -u | tr '\\n' ' '; echo; done";
  Output kept = sh(gcc() + " --graft-verbose --graft-policy=balanced -O2" + calls);
  ASSERT_EQ(kept.status, 0) << kept.text;
  EXPECT_NE(kept.text.find("-fplugin="), std::string::npos) << kept.text;
  for (const char* named : {"nothing inlined into main\n", "nothing inlined into serve\n", "nothing inlined into start\n"})
    EXPECT_NE(kept.text.find(std::string("graft_gcc_policy: ") + named), std::string::npos) << named << kept.text;
  EXPECT_NE(kept.text.find("main:.text.helper .text.ihelper \n"), std::string::npos) << kept.text;
  EXPECT_NE(kept.text.find("serve:.text.helper .text.ihelper \n"), std::string::npos) << kept.text;
  Output inlined = sh(gcc() + " --graft-policy=fast -O2" + calls);
  ASSERT_EQ(inlined.status, 0) << inlined.text;
  EXPECT_NE(inlined.text.find("main:\n"), std::string::npos) << inlined.text;
}

// A stripping link would leave graft diff no DWARF: graft-cc keeps it and
// says why, in one line.
TEST_F(Driver, StrippingLinkKeepsTheDebugInformation) {
  write_text(dir_ / "main.c", "int main(void) { return 0; }\n");
  for (const std::string flags : {"-s", "-Wl,-s", "-Wl,--strip-all", "-Wl,-S", "-Wl,--strip-debug"}) {
    Output out = sh(cc() + " -O2 " + flags + " main.c -o prog 2>warning && ./prog && cat warning");
    ASSERT_EQ(out.status, 0) << flags << ": " << out.text;
    EXPECT_EQ(count_lines(out.text), 1u) << flags << ": " << out.text;
    EXPECT_NE(out.text.find("warning: ignoring " + flags + ": graft diff needs the debug information"),
              std::string::npos) << out.text;
    auto elf = graft::ElfFile::open(dir_ / "prog");
    ASSERT_TRUE(elf.ok()) << elf.error().message;
    EXPECT_NE((*elf)->section(".debug_info"), nullptr) << flags;
  }
}

// (c) Separate compilations, then a link of the objects: all recorded, in
// link order, identical to the objects that were linked.
TEST_F(Driver, LinkOfObjectsRecordsThemInLinkOrder) {
  write_text(dir_ / "a.c", "int b_value(void);\nint main(void) { return b_value() == 7 ? 0 : 1; }\n");
  write_text(dir_ / "b.c", "int b_value(void) { return 7; }\n");
  Output out = sh(cc() + " -O1 -c b.c && " + cc() + " -O1 -c a.c && " + cc() +
                  " --graft-policy=fast b.o a.o -o prog && ./prog");
  ASSERT_EQ(out.status, 0) << out.text;
  auto id = graft::read_build_id(dir_ / "prog");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto record = graft::load_build(*id);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->policy, "fast");
  ASSERT_EQ(record->objects.size(), 2u);
  EXPECT_EQ(record->objects[0].filename(), "0000-b.o");
  EXPECT_EQ(record->objects[1].filename(), "0001-a.o");
  EXPECT_EQ(read_text(record->objects[0]), read_text(dir_ / "b.o"));
  EXPECT_EQ(read_text(record->objects[1]), read_text(dir_ / "a.o"));
}

// Autoconf probes are not recorded; a failing link keeps clang's status,
// records nothing and leaves no temporary files; make's implicit rules work.
TEST_F(Driver, ProbesAndFailuresAreNotRecorded) {
  write_text(dir_ / "conftest.c", "int main(void) { return 0; }\n");
  Output probe = sh(cc() + " -g -O2 conftest.c -o conftest && ./conftest && " + cc() + " conftest.c && ./a.out");
  ASSERT_EQ(probe.status, 0) << probe.text;
  write_text(dir_ / "broken.c", "int missing(void);\nint main(void) { return missing(); }\n");
  Output broken = sh(cc() + " broken.c -o broken");
  EXPECT_NE(broken.status, 0);
  EXPECT_NE(broken.text.find("missing"), std::string::npos) << broken.text;
  EXPECT_TRUE(store_entries().empty());
  EXPECT_TRUE(tmp_is_empty());

  write_text(dir_ / "hello.c", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n");
  Output made = sh("make -s CC=" + cc() + " CFLAGS=-O2 hello && ./hello");
  ASSERT_EQ(made.status, 0) << made.text;
  EXPECT_EQ(made.text, "hi\n");
  EXPECT_EQ(store_entries().size(), 1u);
  EXPECT_TRUE(tmp_is_empty());
}

// (d) strict: a small static function that clang -O2 inlines stays a called
// symbol; fast: it is inlined.
TEST_F(Driver, StrictPolicyKeepsSmallStaticFunctions) {
  write_text(dir_ / "p.c",
             "static int square(int x) { return x * x; }\n"
             "int compute(int v) { return square(v) + 1; }\n"
             "int main(int argc, char **argv) { (void)argv; return compute(argc) == 2 ? 0 : 1; }\n");
  Output strict = sh(cc() + " --graft-policy=strict -O2 -c p.c -o strict.o && " + cc() +
                     " --graft-policy=strict -O2 p.c -o strict && ./strict");
  ASSERT_EQ(strict.status, 0) << strict.text;
  Output fast = sh(cc() + " --graft-policy=fast -O2 -c p.c -o fast.o && " + cc() +
                   " --graft-policy=fast -O2 p.c -o fast && ./fast");
  ASSERT_EQ(fast.status, 0) << fast.text;

  auto strict_elf = graft::ElfFile::open(dir_ / "strict.o");
  ASSERT_TRUE(strict_elf.ok()) << strict_elf.error().message;
  const graft::ElfSymbol* square = find_symbol(**strict_elf, "square");
  ASSERT_NE(square, nullptr) << "strict: square is gone";
  EXPECT_EQ(square->type, STT_FUNC);
  EXPECT_EQ(square->bind, STB_LOCAL);
  EXPECT_TRUE(calls(**strict_elf, ".text.compute", *square)) << "strict: compute does not call square";

  auto fast_elf = graft::ElfFile::open(dir_ / "fast.o");
  ASSERT_TRUE(fast_elf.ok()) << fast_elf.error().message;
  EXPECT_EQ(find_symbol(**fast_elf, "square"), nullptr) << "fast: square was not inlined";

  // The linked executables too, and each records its policy.
  auto strict_exe = graft::ElfFile::open(dir_ / "strict");
  ASSERT_TRUE(strict_exe.ok());
  EXPECT_NE(find_symbol(**strict_exe, "square"), nullptr);
  auto fast_exe = graft::ElfFile::open(dir_ / "fast");
  ASSERT_TRUE(fast_exe.ok());
  EXPECT_EQ(find_symbol(**fast_exe, "square"), nullptr);
  auto strict_id = graft::read_build_id(dir_ / "strict");
  ASSERT_TRUE(strict_id.ok()) << strict_id.error().message;
  auto strict_record = graft::load_build(*strict_id);
  ASSERT_TRUE(strict_record.ok()) << strict_record.error().message;
  EXPECT_EQ(strict_record->policy, "strict");
  auto fast_id = graft::read_build_id(dir_ / "fast");
  ASSERT_TRUE(fast_id.ok()) << fast_id.error().message;
  auto fast_record = graft::load_build(*fast_id);
  ASSERT_TRUE(fast_record.ok()) << fast_record.error().message;
  EXPECT_EQ(fast_record->policy, "fast");
}

// The plugin in clang++ with the standard library (always_inline functions,
// templates, -O0 optnone) builds correct programs in both policies.
TEST_F(Driver, CxxProgramsBuildInBothPolicies) {
  write_text(dir_ / "v.cpp",
             "#include <iostream>\n#include <map>\n#include <string>\n#include <vector>\n"
             "namespace { int twice(int x) { return 2 * x; } }\n"
             "int main() { std::vector<int> v{1, 2, 3}; std::map<std::string, int> m; int s = 0;\n"
             "  for (int x : v) { s += twice(x); m[std::to_string(x)] = x; }\n"
             "  std::cout << s << ' ' << m.size() << '\\n'; return 0; }\n");
  for (const char* flags : {"-O0", "-O2", "-O2 --graft-policy=fast"}) {
    SCOPED_TRACE(flags);
    Output out = sh(cxx() + " " + flags + " -std=c++17 v.cpp -o v && ./v");
    ASSERT_EQ(out.status, 0) << out.text;
    EXPECT_EQ(out.text, "12 3\n");
    auto elf = graft::ElfFile::open(dir_ / "v");
    ASSERT_TRUE(elf.ok());
    const bool strict = std::string(flags).find("fast") == std::string::npos;
    // (anonymous namespace)::twice: kept in strict mode, inlined by -O2 otherwise.
    EXPECT_EQ(find_symbol(**elf, "_ZN12_GLOBAL__N_15twiceEi") != nullptr, strict);
  }
}

// Assembly gets none of the compile flags (they would be unused, and -g
// breaks assembly that carries its own line directives).
TEST_F(Driver, AssemblyIsLeftAlone) {
  write_text(dir_ / "f.c", "int f(int x) { return x + 1; }\n");
  Output out = sh(cc() + " -Werror -O2 -S f.c -o f.s && " + cc() + " -Werror -c f.s -o f.o");
  ASSERT_EQ(out.status, 0) << out.text;
  auto elf = graft::ElfFile::open(dir_ / "f.o");
  ASSERT_TRUE(elf.ok());
  EXPECT_NE(find_symbol(**elf, "f"), nullptr);
  EXPECT_NE((*elf)->section("__patchable_function_entries"), nullptr);  // from the -S step
}

// The plugin refuses to register in an LLVM of another major: here a fake
// LLVMGetVersion (exported by LLVM 16 and later) says 16.
TEST_F(Driver, PluginRefusesAnotherLlvmMajor) {
  write_text(dir_ / "fake.c",
             "void LLVMGetVersion(unsigned *major, unsigned *minor, unsigned *patch)"
             " { *major = 16; *minor = 0; *patch = 0; }\n");
  write_text(dir_ / "t.c", "int f(void) { return 1; }\n");
  Output fake = sh(quote(GRAFT_TEST_CLANG) + " -shared -fPIC fake.c -o fake.so");
  ASSERT_EQ(fake.status, 0) << fake.text;
  // The preload is for the clang graft-cc runs; graft-cc gets it too, and
  // when sanitized (scripts/sanitize.sh) ASan wants its runtime first.
  Output out = sh("LD_PRELOAD=" + quote((dir_ / "fake.so").string()) +
                  " ASAN_OPTIONS=\"$ASAN_OPTIONS:verify_asan_link_order=0\" " + cc() + " -c t.c");
  EXPECT_NE(out.status, 0) << out.text;
  EXPECT_NE(out.text.find("built for LLVM 14 but loaded into LLVM 16"), std::string::npos) << out.text;
  EXPECT_FALSE(fs::exists(dir_ / "t.o"));
  Output good = sh(cc() + " -c t.c");
  EXPECT_EQ(good.status, 0) << good.text;
}

// (e) A CMake project with CMAKE_C_COMPILER=graft-cc: identified as Clang,
// builds, runs, records the program (and not CMake's probes).
TEST_F(Driver, CMakeProjectBuildsAndRuns) {
  write_text(dir_ / "proj/CMakeLists.txt",
             "cmake_minimum_required(VERSION 3.16)\nproject(demo LANGUAGES C CXX)\n"
             "add_executable(demo main.c util.cpp)\n");
  write_text(dir_ / "proj/main.c", "#include <stdio.h>\nint util(int);\nint main(void) { printf(\"%d\\n\", util(20)); return 0; }\n");
  write_text(dir_ / "proj/util.cpp", "extern \"C\" int util(int x) { return x + 22; }\n");
  Output out = sh(quote(GRAFT_TEST_CMAKE) + " -S proj -B build -G " + quote(GRAFT_TEST_GENERATOR) +
                      " -DCMAKE_C_COMPILER=" + cc() + " -DCMAKE_CXX_COMPILER=" + cxx() + " && " +
                      quote(GRAFT_TEST_CMAKE) + " --build build && ./build/demo",
                  240);
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_NE(out.text.find("The C compiler identification is Clang 14"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("The CXX compiler identification is Clang 14"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("42\n"), std::string::npos) << out.text;

  auto id = graft::read_build_id(dir_ / "build/demo");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto record = graft::load_build(*id);
  ASSERT_TRUE(record.ok()) << record.error().message;
  ASSERT_EQ(record->objects.size(), 2u);
  EXPECT_EQ(record->objects[0].filename(), "0000-main.c.o");
  EXPECT_EQ(record->objects[1].filename(), "0001-util.cpp.o");
  EXPECT_EQ(record->compiler, GRAFT_TEST_CLANGXX);  // CMake links a C/C++ mix with the C++ compiler
  EXPECT_EQ(store_entries().size(), 1u) << "CMake's probes were recorded";
}

// (f) Bad driver options: one line on stderr, exit status 2, clang not run.
TEST_F(Driver, BadOptionsFailWithOneLine) {
  for (const std::string& command : {cc() + " --graft-policy=bogus -c t.c", cc() + " --graft-nonsense -c t.c",
                                    "GRAFT_POLICY=bogus " + cc() + " -c t.c"}) {
    SCOPED_TRACE(command);
    Output out = sh(command);
    EXPECT_EQ(out.status, 2);
    EXPECT_EQ(count_lines(out.text), 1u) << out.text;
    EXPECT_EQ(out.text.rfind("graft-cc: ", 0), 0u) << out.text;
  }
  EXPECT_NE(sh(cc() + " --graft-policy=bogus -c t.c").text.find("bogus"), std::string::npos);
  Output help = sh(cc() + " --graft-help");
  EXPECT_EQ(help.status, 0);
  for (const char* needle : {"-fpatchable-function-entry=16,14", "--graft-policy", "GRAFT_STORE", "GRAFT_CLANG",
                             "GRAFT_PASS_PLUGIN", "build-id", ".a"})
    EXPECT_NE(help.text.find(needle), std::string::npos) << needle;
}

// (g) Preprocessing, dependency generation and information requests pass
// through untouched.
TEST_F(Driver, InformationAndPreprocessingPassThrough) {
  write_text(dir_ / "t.c", "#include <stddef.h>\n#define ANSWER 42\nint answer = ANSWER;\n");
  Output pre = sh(cc() + " --graft-verbose -E t.c");
  ASSERT_EQ(pre.status, 0) << pre.text;
  EXPECT_NE(pre.text.find("int answer = 42;"), std::string::npos) << pre.text;
  EXPECT_EQ(pre.text.find("-fpass-plugin"), std::string::npos) << pre.text;
  EXPECT_EQ(pre.text.find("-fpatchable-function-entry"), std::string::npos) << pre.text;

  Output deps = sh(cc() + " --graft-verbose -M t.c");
  ASSERT_EQ(deps.status, 0) << deps.text;
  EXPECT_NE(deps.text.find("t.o: t.c"), std::string::npos) << deps.text;
  EXPECT_NE(deps.text.find("stddef.h"), std::string::npos) << deps.text;
  EXPECT_EQ(deps.text.find("-fpass-plugin"), std::string::npos) << deps.text;
  EXPECT_FALSE(fs::exists(dir_ / "t.o"));

  Output version = sh(cc() + " --version");
  ASSERT_EQ(version.status, 0) << version.text;
  EXPECT_NE(version.text.find("clang version 14"), std::string::npos) << version.text;
  Output cxx_version = sh(cxx() + " --graft-verbose --version");
  ASSERT_EQ(cxx_version.status, 0) << cxx_version.text;
  EXPECT_NE(cxx_version.text.find(GRAFT_TEST_CLANGXX), std::string::npos) << cxx_version.text;

  Output dump = sh(cc() + " -dumpversion");
  ASSERT_EQ(dump.status, 0) << dump.text;
  EXPECT_EQ(dump.text.rfind("14", 0), 0u) << dump.text;
  Output print = sh(cc() + " -print-prog-name=ld");
  ASSERT_EQ(print.status, 0) << print.text;
  EXPECT_NE(print.text.find("ld"), std::string::npos) << print.text;
  EXPECT_TRUE(store_entries().empty());
}

}  // namespace

// The store is trusted only when it is trustworthy: never a shared store in
// /tmp, a store or record writable by anyone but its owner refused, the
// objects and the executable checked against the digests graft-cc recorded
// when it linked them.
TEST_F(Driver, StoreIsTrustedOnlyWhenTrustworthy) {
  write_text(dir_ / "main.c", "int add(int, int);\nint main(void) { return add(2, 3) == 5 ? 0 : 1; }\n");
  write_text(dir_ / "add.c", "int add(int a, int b) { return a + b; }\n");
  Output out = sh(cc() + " -O1 -c add.c && " + cc() + " -O1 main.c add.o -o prog && ./prog");
  ASSERT_EQ(out.status, 0) << out.text;
  auto id = graft::read_build_id(dir_ / "prog");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto record = graft::load_build(*id);
  ASSERT_TRUE(record.ok()) << record.error().message;
  ASSERT_EQ(record->object_digests.size(), 2u);
  EXPECT_EQ(record->output_digest.size(), 64u);
  EXPECT_TRUE(graft::verify_build(*record, dir_ / "prog").ok());
  auto refusal = [](const graft::Status& s) { return s.ok() ? std::string("(accepted)") : s.error().message; };
  auto load_refusal = [&] {
    auto r = graft::load_build(*id);
    return r.ok() ? std::string("(accepted)") : r.error().message;
  };

  // With neither HOME nor XDG_CACHE_HOME: nothing recorded, nothing read, and said so.
  const std::string homeless = "env -u HOME -u XDG_CACHE_HOME -u GRAFT_STORE ";
  Output cc_out = sh(homeless + cc() + " -O1 main.c add.o -o prog2 && ./prog2");
  EXPECT_EQ(cc_out.status, 0) << cc_out.text;
  EXPECT_NE(cc_out.text.find("set GRAFT_STORE or HOME"), std::string::npos) << cc_out.text;
  EXPECT_EQ(count_lines(cc_out.text), 1u) << cc_out.text;
  const std::string graft_bin = quote((fs::path(GRAFT_TEST_CC).parent_path() / "graft").string());
  Output diff_out = sh(homeless + graft_bin + " diff prog prog -o p.graft");
  EXPECT_EQ(diff_out.status, 1) << diff_out.text;
  EXPECT_NE(diff_out.text.find("keeps no shared store in /tmp: set GRAFT_STORE or HOME"), std::string::npos)
      << diff_out.text;

  // Writable by others, or owned by someone else: refused in one line, like a loose authorized_keys.
  const fs::path record_dir = store_ / *id;
  for (const fs::path& path : {store_, record_dir, record_dir / "objects", record_dir / "build.json"}) {
    SCOPED_TRACE(path.string());
    const auto before = fs::status(path).permissions();
    fs::permissions(path, before | fs::perms::others_write);
    const std::string message = load_refusal();
    EXPECT_NE(message.find("is writable by anyone"), std::string::npos) << message;
    EXPECT_NE(message.find("chmod go-w"), std::string::npos) << message;
    EXPECT_EQ(count_lines(message), 1u) << message;
    fs::permissions(path, before);
  }
  ASSERT_EQ(chown((record_dir / "build.json").c_str(), 12345, static_cast<gid_t>(-1)), 0);
  EXPECT_NE(load_refusal().find("is owned by uid 12345, not by root or by you"), std::string::npos) << load_refusal();
  ASSERT_EQ(chown((record_dir / "build.json").c_str(), geteuid(), static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(load_refusal(), "(accepted)");

  // An executable changed after linking (stripped: the same build-id).
  ASSERT_EQ(sh("strip -o prog.stripped prog").status, 0);
  const std::string changed = refusal(graft::verify_build(*record, dir_ / "prog.stripped"));
  EXPECT_NE(changed.find("is not the executable graft-cc linked as build-id"), std::string::npos) << changed;
  // An object changed after linking: the store's hard link shares the build directory's file.
  { std::ofstream(dir_ / "add.o", std::ios::app) << "injected"; }
  const std::string object = refusal(graft::verify_build(*record, dir_ / "prog"));
  EXPECT_NE(object.find("0001-add.o changed since graft-cc linked build-id"), std::string::npos) << object;

  // A record without digests (an older graft-cc) is refused with what to do.
  std::string json = read_text(record_dir / "build.json");
  json.replace(json.find("\"object_digests\""), std::string("\"object_digests\"").size(), "\"old_digests\"");
  write_text(record_dir / "build.json", json);
  EXPECT_NE(load_refusal().find("link the program again with this graft-cc"), std::string::npos) << load_refusal();
}
