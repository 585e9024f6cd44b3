// graft-cc's understanding of a compiler command line: what the user asked
// clang to do (print information, preprocess, compile, link), which arguments
// are inputs, and the commands the driver runs instead. Pure functions of the
// arguments, no I/O, so that they can be tested without a compiler.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace graft::driver {

// The graft flags for every compilation to object code (before -fpass-plugin).
inline constexpr const char* kGraftFlags[] = {
    "-g",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
    "-fpatchable-function-entry=16,14",
    "-fno-omit-frame-pointer",
};
inline constexpr const char* kBuildIdFlag = "-Wl,--build-id=sha1";
inline constexpr const char* kDefaultPolicy = "balanced";
inline bool is_policy(const std::string& p) { return p == "strict" || p == "balanced" || p == "fast"; }

// How many arguments after `arg` are its values (clang options with a
// separate value: -o FILE, -L DIR, -Xlinker ARG, ...); 0 for any other.
int separate_values(std::string_view arg);

// --graft-* options, consumed by the driver and never passed to clang.
struct DriverOptions {
  std::string policy = kDefaultPolicy;  // "strict", "balanced" or "fast"
  bool verbose = false;
  bool help = false;
  bool member_facts = true;  // --graft-member-facts=off: the plugin records nothing (common/member_facts_format.h)
  // --graft-heap-types=on|off: heap type tags (common/member_facts_format.h); unset: $GRAFT_HEAP_TYPES decides.
  std::optional<bool> heap_types;
};

// Removes the --graft-* options from `args`. `env_policy` is $GRAFT_POLICY
// (nullptr when unset); the option wins over it. The error is one line.
Result<DriverOptions> take_driver_options(std::vector<std::string>& args, const char* env_policy);

// Link options that strip the debug information graft diff reads: -s, and
// -s, -S, --strip-all, --strip-debug given to the linker (-Wl,... or
// -Xlinker ...). Removed from `args` (from a -Wl, list only the stripping
// ones) and returned as the user wrote them, for the driver's warning.
std::vector<std::string> take_strip_options(std::vector<std::string>& args);

// The one-line warning for the stripping options graft-cc dropped.
std::string strip_warning(const std::vector<std::string>& dropped, const std::string& output);

enum class Mode {
  PassThrough,  // no object code: --version, -v, -print-*, -dump*, -###, -E, -M, -MM, -fsyntax-only, ...
  Compile,      // -c, -S: compile to object code (or assembly) only
  Link,         // compile what needs compiling, then link
};

enum class InputKind {
  Source,    // C/C++ (also preprocessed): gets the graft flags
  Assembly,  // .s/.S or -x assembler*: compiled to an object, but the graft flags do not apply
  Object,    // .o: recorded in link order
  Other,     // archives, shared libraries, linker scripts, ...: passed to the linker as given
             // (the archive members the link takes are recorded: driver/archive_members.h)
};

struct Input {
  size_t arg = 0;         // index in CommandLine::args
  std::string path;       // "-" for standard input
  InputKind kind = InputKind::Other;
  std::string language;   // the -x language in effect ("" when none)
};

// What each argument is, so that commands can be rebuilt from the user's own.
enum class Role {
  Option,       // anything else: kept everywhere
  Input,        // a positional input (see inputs)
  Output,       // -o, -oFILE, --output, --output=FILE, or the value of -o/--output
  Language,     // -x, -xLANG, or the value of -x
  LinkerOnly,   // -l, -Wl,..., -Xlinker, -z, -T...: meaningless when only compiling
};

struct CommandLine {
  std::vector<std::string> args;  // the user's arguments without argv[0] and --graft-*
  std::vector<Role> roles;        // one per argument
  std::vector<Input> inputs;
  Mode mode = Mode::PassThrough;
  bool executable = false;        // Link mode producing an executable (not -shared, not -r)
  bool shared_library = false;    // Link mode producing a shared library (-shared), recorded like an executable
  // A link whose output graft records in the store: an executable or a shared library (not -r).
  bool records_build() const { return mode == Mode::Link && (executable || shared_library); }
  std::optional<std::string> output;  // -o value
  bool has_build_id = false;      // the user passed --build-id to the linker
  bool dependency_file = false;   // -MD or -MMD
  bool has_MF = false;
  bool has_MT = false;            // -MT or -MQ
  bool response_file = false;     // an @file argument (not looked into)

  bool has_compilable_source() const;  // any Source input
  bool has_assembly() const;
  bool has_sources() const;            // any Source or Assembly input (to be compiled)
};

CommandLine parse_command_line(std::vector<std::string> args);

// The compiler the driver runs, and what it adds to a compilation for it.
// graft-cc and graft-c++ run the pinned clang, whose graft pass plugin
// applies the policy; graft-gcc and graft-g++ run Debian's gcc 12, whose own
// options carry it (gcc_policy_flags).
struct Toolchain {
  bool gcc = false;
  std::string plugin;   // clang: the graft pass plugin; gcc: the policy plugin (balanced), or ""
  std::string include;  // the directory that holds graft/graft.h, or "" (clang: found from the plugin's)
  std::string policy = kDefaultPolicy;
  bool verbose = false;  // gcc: the policy plugin names the functions it keeps (--graft-verbose)

  static Toolchain clang(std::string plugin) { return Toolchain{false, std::move(plugin), "", kDefaultPolicy, false}; }
  static Toolchain gnu(std::string policy, std::string include) {
    return Toolchain{true, "", std::move(include), std::move(policy), false};
  }
};

// What gcc needs besides kGraftFlags, whatever the policy: no identical code
// folding (two functions at one address: redirecting one would redirect the
// other) and no hot/cold splitting (a function's cold part a symbol of its
// own, outside its patchable entry).
inline constexpr const char* kGccFlags[] = {"-fno-ipa-icf", "-fno-reorder-blocks-and-partition"};

// gcc's options for a policy: strict, no inlining at all and no
// interprocedural optimisation a patch could break
// (-flive-patching=inline-only-static); balanced, inlining and cloning
// only (-flive-patching=inline-clone: graft diff then patches every caller
// a change reaches) and no inlining of a static function called once (what
// main and service loops call once would otherwise change with it); fast,
// nothing more.
std::vector<std::string> gcc_policy_flags(const std::string& policy);

// The flags added to a compilation: kGraftFlags, then -fpass-plugin=<plugin>
// (clang) or kGccFlags and the policy's (gcc), then -isystem <include>.
std::vector<std::string> graft_compile_flags(const Toolchain& toolchain);

// Warnings clang 14 gives on code gcc 12 accepts by default or with -Wall
// (gcc has some only in -Wextra, others not at all): under the user's -Werror they
// stay warnings, so that a project whose Makefile says -Werror for gcc
// builds with graft-cc. unknown-warning-option: gcc's own -W options
// (-Wlogical-op, -Wduplicated-cond, ...) that clang does not know.
inline constexpr const char* kClangOnlyWarnings[] = {
    "enum-conversion",
    "unknown-warning-option",
    "implicit-const-int-float-conversion",
    "implicit-int-float-conversion",
    "constant-conversion",
    "tautological-constant-out-of-range-compare",
    "null-pointer-arithmetic",
    "null-pointer-subtraction",
    "string-plus-int",
    "compound-token-split-by-macro",
    "self-assign",
    "unused-private-field",
    "gnu-variable-sized-type-not-at-end",
    "sometimes-uninitialized",
};

// -Wno-error=<w> for each of kClangOnlyWarnings when the command has
// -Werror, except those the user made errors by name (-Werror=<w>).
std::vector<std::string> clang_only_warning_flags(const CommandLine& cl);

// The argument list for clang (without argv[0]) when the driver exec()s clang
// in place of itself: the user's arguments plus the graft flags if the
// command compiles C/C++ to object code (or assembly), plus the build-id flag
// if it links an executable.
std::vector<std::string> direct_arguments(const CommandLine& cl, const Toolchain& toolchain);

// For a link command with sources: the command (without argv[0]) that
// compiles input `input` alone to `object`, with the user's compile flags and
// the graft flags (none for assembly).
std::vector<std::string> source_compile_arguments(const CommandLine& cl, const Input& input,
                                                  const std::string& object, const Toolchain& toolchain);

// The link command (without argv[0]) with every source replaced by its object
// (`objects[i]` for the i-th input with has_sources() kind), and the build-id flag.
std::vector<std::string> link_arguments(const CommandLine& cl, const std::vector<std::string>& source_objects);

// The objects that go into the link, in link order: .o inputs as given and
// the objects compiled from sources.
std::vector<std::string> linked_objects(const CommandLine& cl, const std::vector<std::string>& source_objects);

// Whether the executable this command links (at `absolute_output`) is
// recorded in the store: not configure/CMake/Meson probes, not /dev/null.
bool worth_recording(const CommandLine& cl, std::string_view absolute_output);

// A command line for humans (and shells): arguments quoted where needed.
std::string shell_quote(const std::vector<std::string>& command);

}  // namespace graft::driver
