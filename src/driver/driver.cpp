#include "driver/driver.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "driver/archive_members.h"
#include "driver/command_line.h"
#include "driver/link_map.h"
#include "elf/elf_file.h"
#include "common/error.h"
#include "common/member_facts_format.h"
#include "store/store.h"
#include "common/temp_dir.h"

extern char** environ;

namespace graft::driver {
namespace {
namespace fs = std::filesystem;

constexpr const char* kHelp = R"(usage: {name} [--graft-policy=balanced|strict|fast] [--graft-verbose] <clang arguments>
       {name} --graft-help

{name} is a drop-in C{lang} compiler: it runs {clang} with your
arguments, plus what graft needs to update the program while it runs later.
Use it as CC/CXX (CC=graft-cc CXX=graft-c++ make, ./configure CC=graft-cc,
cmake -DCMAKE_C_COMPILER=graft-cc -DCMAKE_CXX_COMPILER=graft-c++).

Every compilation to object code (-c, -S, or a compile-and-link command) gets:
  -g                                debug info: graft diff compares types and
                                    globals from DWARF
  -ffunction-sections -fdata-sections
                                    one section per function and per object:
                                    each can be compared and replaced alone
  -fno-common                       every global has one definition and a
                                    real symbol to link new code against
  -fpatchable-function-entry=16,14  14 bytes of NOP before each function and a
                                    2-byte NOP at its entry: a function is
                                    redirected by one 2-byte write (a short
                                    jump back to an absolute jump in the pad)
  -fno-omit-frame-pointer           threads can be unwound quickly and reliably
                                    to check that no frame is in patched code
  -fpass-plugin=graft-pass.so       applies the policy (below) inside clang
With -Werror, the warnings clang 14 gives on code gcc 12 accepts (by
default or with -Wall) stay warnings (-Wno-error=...):
{clang_only}
(-Werror=<name> keeps one an error). A project that builds with gcc -Werror
builds with {name}; clang's other warnings are errors as you asked.
Your optimisation level is left as you gave it (-O0 stays -O0). Nothing is
added to -E, -M/-MM, -fsyntax-only, --version, -v, -print-*, -dump*, -###,
or to assembly-only compilations.

Linking an executable or a shared library (-shared) also adds
-Wl,--build-id=sha1 (unless you gave a --build-id) and records the build in
the graft store, so that `graft diff old/prog new/prog` (or
`graft diff old/libfoo.so new/libfoo.so`) finds the objects again from the
build-id.
Sources given on the link command are compiled one by one to temporary
objects first, so that their objects can be recorded. Probe programs are not
recorded: autoconf's (conftest, or linked from conftest.*), CMake's and Meson's.
A build that cannot be recorded gives one warning; the link still succeeds.
The exit status is clang's.

Options (consumed by {name}, never passed to clang):
  --graft-policy=balanced|strict|fast
                              optimisation vs patchability (default: {default_policy})
      balanced  clang optimises as usual, except that nothing is inlined into
              main or into a service loop (a function with a loop that blocks:
              epoll_wait, accept, read, pthread_cond_wait, ...), and what they
              call is sealed (below). Such functions never return, so a change
              must not leak into them: with balanced it reaches them only if
              they changed themselves. Measured: about 1.04x plain clang's
              instructions per request on the example server, 1.09x on a
              CPU-bound program (docs/BENCHMARKS.md).
      strict  no function is inlined into another (except always_inline ones);
              static functions keep their parameters and stay symbols; every
              function is sealed: an empty inline-asm barrier (no instruction)
              keeps callers from learning its return value or side effects.
              A change stays inside its function; patches are smallest.
              Measured: about 1.17x instructions per request, 2.2x on a
              CPU-bound program made of many tiny calls.
      fast    clang optimises as usual; graft diff finds every caller a change
              affects, so patches are larger, and a change inlined into a
              function that never returns cannot be applied.
  --graft-member-facts=on|off record (default) what each unit stores into the
                              void * and address-holding integer members of its
                              structs, in a section of the object that is not
                              loaded (no cost at run time): graft diff follows,
                              dismisses or asks about those members from it
  --graft-heap-types=on|off   off by default. On: each allocation the program
                              casts to a struct (client *c = malloc(sizeof *c))
                              writes the struct's 2-byte ID into a table beside
                              the heap, and free() and realloc() clear it, so
                              that graft apply can tell what a void * holds
                              where the records cannot (a list of clients
                              among other structs). Costs a store per such
                              allocation and a load per free, and up to 1/8
                              of the heap in memory (bench/heap_types_bench);
                              only the executable's own code is tagged.
                              Also GRAFT_HEAP_TYPES=on in the environment
  --graft-verbose             print the clang commands run, to stderr
  --graft-help                this text

Environment:
  GRAFT_POLICY       default policy when --graft-policy is not given
                     (also how the policy reaches the plugin inside clang)
  GRAFT_CLANG        the clang run by graft-cc    (default {default_clang})
  GRAFT_CLANGXX      the clang++ run by graft-c++ (default {default_clangxx})
                     (must be LLVM {llvm_major}: the plugin refuses any other major)
  GRAFT_PASS_PLUGIN  the plugin (default: ../lib/graft-pass.so or
                     ../lib/graft/graft-pass.so next to this program)
  GRAFT_STORE        the build store (default $XDG_CACHE_HOME/graft/store,
                     else ~/.cache/graft/store; never a shared directory in
                     /tmp: with none of the three set, nothing is recorded;
                     now {store})

Store layout: <store>/<build-id>/build.json (output, compiler, policy, link
command, objects, and the BLAKE2b digest of the executable and of each
object as linked) and <store>/<build-id>/objects/NNNN-<name>.o, in link
order. graft diff refuses a store or record that anyone but its owner (root
or the user running it) may write, as ssh refuses a loose authorized_keys,
and an object or executable whose digest differs from the recorded one.

Stripping link options (-s, -Wl,-s, -Wl,-S, -Wl,--strip-all, -Wl,--strip-debug)
are dropped with a warning: graft diff needs the debug information. Ship a
stripped copy (objcopy --strip-debug) and keep the unstripped binary.

Static archives (libfoo.a as an input, or -L DIR -lfoo; thin archives,
--whole-archive): the members the linker took from them, as its map says
(graft-cc adds -Wl,-Map=FILE, or reads yours), are recorded like any object,
copied out of the archive as linked, so that the archive may be rebuilt for
the next version. A member {name} did not compile (no DWARF, or no patchable
entries) is named in one warning per archive and recorded by digest only:
graft diff cannot patch its code, and refuses a build in which it changed.
Archives the compiler links by itself (libgcc.a, libc_nonshared.a) are not.

Limits: response files (@file) on the link line are not looked into; only
the objects and archives they would name are missed. Relocatable links (-r)
are compiled with the graft flags but not recorded.
)";

constexpr const char* kGccHelp = R"(usage: {name} [--graft-policy=balanced|strict|fast] [--graft-verbose] <gcc arguments>
       {name} --graft-help

{name} is a drop-in C{lang} compiler: it runs {clang} with your
arguments, plus what graft needs to update the program while it runs later.
It is graft-cc for projects that build, or are supported, only with gcc:
the same store, the same patches, the same `graft diff` and `graft apply`.
Use it as CC/CXX (CC=graft-gcc CXX=graft-g++ make, ./configure CC=graft-gcc).

Every compilation to object code (-c, -S, or a compile-and-link command) gets:
  -g -ffunction-sections -fdata-sections -fno-common -fno-omit-frame-pointer
                                    as graft-cc (see graft-cc --graft-help)
  -fpatchable-function-entry=16,14  14 bytes of NOP before each function and 2
                                    at its entry: a function is redirected by
                                    one 2-byte write. gcc's entry is two 1-byte
                                    NOPs: graft apply waits while a thread is
                                    between them, as it waits for any thread
                                    inside a function it replaces
  -fno-ipa-icf                      no identical functions folded into one
                                    (redirecting one would redirect both)
  -fno-reorder-blocks-and-partition no function split into a hot and a cold
                                    part (foo.cold, outside its entry)
and the policy's options (below). Your optimisation level is left as you gave
it. Linking an executable or a shared library adds -Wl,--build-id=sha1 and
records the build in the graft store, with static archives' members, as
graft-cc does.

Options (consumed by {name}, never passed to gcc):
  --graft-policy=balanced|strict|fast
                              optimisation vs patchability (default: {default_policy})
      balanced  -flive-patching=inline-clone: gcc inlines and clones (foo.isra.0,
              foo.constprop.0) but makes no other interprocedural assumption
              (register use, purity, modified memory) across functions; graft
              diff patches every caller a change reaches. And
              -fno-inline-functions-called-once: the static helpers main and
              service loops call once stay functions of their own. And
              -fplugin=graft_gcc_policy.so, as graft-cc's balanced: nothing is
              inlined into main, into a service loop (a function with a loop
              that makes a blocking call: epoll_wait, accept, read, ...) or
              into what calls them, always_inline aside; elsewhere gcc inlines
              as usual. A change then reaches a function that never returns
              only if that function itself changed.
              (With --graft-verbose, the plugin names each one.)
      strict  -flive-patching=inline-only-static -fno-inline: nothing inlined
              (except always_inline), no interprocedural optimisation. A change
              stays inside its function; patches are smallest.
      fast    gcc optimises as usual (but for the two options above); graft
              diff finds every caller a change affects.
  --graft-member-facts=on|off accepted for graft-cc's sake; without graft-cc's
                              plugin nothing is recorded about void * members,
                              so graft diff asks about those it cannot settle
                              from the types (graft/graft.h's declarations)
  --graft-verbose             print the gcc commands run, and the functions the
                              balanced policy keeps inlining out of, to stderr
  --graft-help                this text

Environment:
  GRAFT_POLICY       default policy when --graft-policy is not given
  GRAFT_GCC          the gcc run by graft-gcc (default {default_gcc})
  GRAFT_GXX          the g++ run by graft-g++ (default {default_gxx})
                     (must be gcc 12: the policy plugin refuses any other)
  GRAFT_GCC_PLUGIN   the policy plugin (default: ../lib/graft_gcc_policy.so or
                     ../lib/graft/graft_gcc_policy.so next to this program)
  GRAFT_STORE        the build store (now {store}; see graft-cc --graft-help)
)";

// Where the store is now, or why there is none, for --graft-help.
std::string store_description() {
  auto root = store_root();
  return root ? root->string() : "none: set GRAFT_STORE or HOME";
}

// "  a, b, c," lines of at most 78 columns, for --graft-help.
template <typename Names>
std::string wrapped(const Names& names) {
  std::string out, line = " ";
  for (std::string_view name : names) {
    if (line.size() + name.size() + 3 > 78) {
      out += line + "\n";
      line = " ";
    }
    line += fmt::format(" {},", name);
  }
  line.pop_back();
  return out + line;
}

std::string program_name(const char* argv0) {
  std::string_view name = argv0 ? argv0 : "graft-cc";
  if (const size_t slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  return std::string(name);
}

void print_error(const std::string& name, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", name.c_str(), message.c_str());
}

// A plugin next to this executable: <prefix>/bin/graft-cc ->
// <prefix>/lib/FILE (build tree) or <prefix>/lib/graft/FILE (installed), or
// the one the environment variable `variable` names. `what` says which.
Result<std::string> find_plugin(const char* file, const char* variable, const char* what) {
  if (const char* env = std::getenv(variable); env && *env) {
    if (access(env, R_OK) != 0) return errno_error(fmt::format("{}={}", variable, env), errno);
    return std::string(env);
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return make_error("cannot find {}: /proc/self/exe: {} (set {})", what, ec.message(), variable);
  const fs::path prefix = self.parent_path().parent_path();
  const fs::path candidates[] = {prefix / "lib" / file, prefix / "lib" / "graft" / file};
  for (const fs::path& candidate : candidates)
    if (access(candidate.c_str(), R_OK) == 0) return candidate.string();
  return make_error("cannot find {} ({} or {}; set {})", what, candidates[0].string(), candidates[1].string(),
                    variable);
}

// <prefix>/include, holding graft/graft.h, next to this executable
// (<prefix>/bin/graft-gcc), or "" if there is none.
std::string include_near_driver() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const fs::path include = self.parent_path().parent_path() / "include";
  return fs::exists(include / "graft" / "graft.h", ec) ? include.string() : "";
}

std::vector<char*> c_argv(const std::vector<std::string>& command) {
  std::vector<char*> out;
  out.reserve(command.size() + 1);
  for (const std::string& arg : command) out.push_back(const_cast<char*>(arg.c_str()));
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> with_program(const std::string& clang, const std::vector<std::string>& args) {
  std::vector<std::string> command;
  command.reserve(args.size() + 1);
  command.push_back(clang);
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

struct Context {
  std::string name;      // graft-cc, graft-c++, graft-gcc or graft-g++
  std::string compiler;  // what we run
  std::string policy;
  bool verbose = false;

  void show(const std::vector<std::string>& command) const {
    if (verbose) std::fprintf(stderr, "GRAFT_POLICY=%s %s\n", policy.c_str(), shell_quote(command).c_str());
  }
};

[[noreturn]] void exec_compiler(const Context& ctx, const std::vector<std::string>& args) {
  const std::vector<std::string> command = with_program(ctx.compiler, args);
  ctx.show(command);
  std::vector<char*> argv = c_argv(command);
  execv(ctx.compiler.c_str(), argv.data());
  print_error(ctx.name, errno_error(fmt::format("cannot run {}", ctx.compiler), errno).message);
  std::exit(127);
}

// Runs the compiler as a child and waits. Like system(3), the driver ignores SIGINT
// and SIGQUIT meanwhile (the child gets them from the terminal) so that it can
// clean up after the child. Returns the wait status, or -1 (error printed).
int spawn_compiler(const Context& ctx, const std::vector<std::string>& args) {
  const std::vector<std::string> command = with_program(ctx.compiler, args);
  ctx.show(command);
  std::vector<char*> argv = c_argv(command);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGQUIT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);

  pid_t pid = -1;
  int status = -1;
  const int err = posix_spawn(&pid, ctx.compiler.c_str(), nullptr, &attr, argv.data(), environ);
  if (err != 0) {
    print_error(ctx.name, errno_error(fmt::format("cannot run {}", ctx.compiler), err).message);
  } else {
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        print_error(ctx.name, errno_error("waitpid", errno).message);
        status = -1;
        break;
      }
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  posix_spawnattr_destroy(&attr);
  return status;
}

// The driver's exit for a child's wait status: its exit code, or the same
// signal (so that make sees an interrupted compiler as interrupted).
[[noreturn]] void exit_like(int status) {
  if (status == -1) std::exit(127);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    raise(sig);
    std::exit(128 + sig);
  }
  std::exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

bool succeeded(int status) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

Status record_build(const Context& ctx, const std::string& output, const std::vector<std::string>& link_command,
                    const std::vector<std::string>& objects, const std::vector<LinkedMember>& members) {
  GRAFT_ASSIGN(std::string build_id, read_build_id(output));
  BuildRecord record;
  record.build_id = std::move(build_id);
  record.output = output;
  record.compiler = ctx.compiler;
  record.policy = ctx.policy;
  record.link_args = link_command;
  std::vector<fs::path> paths;
  paths.reserve(objects.size());
  for (const std::string& object : objects) paths.push_back(fs::absolute(object).lexically_normal());
  std::vector<std::pair<std::string, fs::path>> foreign;
  for (const LinkedMember& member : members)
    if (!member.compiled_by_graft) foreign.emplace_back(member.label(), member.object);
  return save_build(std::move(record), paths, foreign);
}

// The objects of the link in link order: the inputs' (sources compiled to
// `source_objects`) and the members graft-cc compiled of the archives the
// linker took them from, each archive where the command line names it.
std::vector<std::string> objects_in_link_order(const CommandLine& cl, const std::vector<std::string>& source_objects,
                                               const std::vector<LinkedMember>& members) {
  const std::vector<std::string> inputs = linked_objects(cl, source_objects);
  std::vector<std::pair<size_t, std::string>> placed;
  size_t next = 0;
  for (const Input& input : cl.inputs)
    if (input.kind != InputKind::Other) placed.emplace_back(input.arg, inputs.at(next++));
  for (const LinkedMember& member : members)
    if (member.compiled_by_graft) placed.emplace_back(member.arg, member.object.string());
  std::stable_sort(placed.begin(), placed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [arg, object] : placed) out.push_back(std::move(object));
  return out;
}

// The archive members the link took (none if it named no archive), and a
// warning for each archive whose members graft-cc did not compile.
Result<std::vector<LinkedMember>> members_taken(const Context& ctx, const CommandLine& cl, const fs::path& map,
                                                const fs::path& extract_dir, const std::string& output) {
  if (map.empty()) return std::vector<LinkedMember>{};
  std::ifstream in(map);
  if (!in) return errno_error(fmt::format("the linker's map {}", map.string()), errno);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  GRAFT_ASSIGN(std::vector<LinkedMember> members, linked_archive_members(cl, text, extract_dir));
  for (const std::string& warning : foreign_member_warnings(members, output)) print_error(ctx.name, "warning: " + warning);
  return members;
}

// A link that is recorded: compile the sources to temporary objects, link as
// a child (asking the linker for its map when it may take archive members),
// record, clean up.
int link_and_record(const Context& ctx, const CommandLine& cl, const Toolchain& toolchain, const std::string& output) {
  std::optional<TempDir> temp;
  std::vector<std::string> source_objects;
  const bool archives = may_link_archives(cl);
  if (cl.has_sources() || archives) {
    auto dir = TempDir::create("graft-cc");
    if (!dir) {
      print_error(ctx.name, dir.error().message);
      return 1;
    }
    temp.emplace(std::move(dir.value()));
  }
  if (cl.has_sources()) {
    size_t n = 0;
    for (const Input& input : cl.inputs) {
      if (input.kind != InputKind::Source && input.kind != InputKind::Assembly) continue;
      // One directory per source keeps the object's name (the store names it
      // NNNN-<name>.o) even when two sources share a file name.
      const fs::path subdir = temp->path() / "sources" / std::to_string(n++);
      std::error_code ec;
      fs::create_directories(subdir, ec);
      std::string stem = input.path == "-" ? "stdin" : fs::path(input.path).stem().string();
      const std::string object = (subdir / (stem + ".o")).string();
      const int status = spawn_compiler(ctx, source_compile_arguments(cl, input, object, toolchain));
      if (!succeeded(status)) {
        temp.reset();
        exit_like(status);
      }
      source_objects.push_back(object);
    }
  }
  std::vector<std::string> link_args = link_arguments(cl, source_objects);
  // Which members the linker takes from an archive only it knows: its map
  // says (the user's map, if asked for: a second -Map would replace it).
  fs::path map;
  if (archives) {
    if (const auto user_map = user_map_file(cl)) {
      map = *user_map;
    } else {
      map = temp->path() / "link.map";
      link_args.push_back("-Wl,-Map=" + map.string());
    }
  }
  const int status = spawn_compiler(ctx, link_args);
  if (succeeded(status)) {
    auto members = members_taken(ctx, cl, map, archives ? temp->path() / "members" : fs::path(), output);
    const Status recorded =
        members ? record_build(ctx, output, with_program(ctx.compiler, link_args),
                               objects_in_link_order(cl, source_objects, *members), *members)
                : Status(members.error());
    if (!recorded)
      std::fprintf(stderr, "%s: warning: %s not recorded in the graft store: %s\n", ctx.name.c_str(), output.c_str(),
                   recorded.error().message.c_str());
  }
  temp.reset();
  exit_like(status);
}

}  // namespace

int run(int argc, char** argv) {
  Context ctx;
  ctx.name = program_name(argc > 0 ? argv[0] : nullptr);
  const bool cxx = ctx.name.find("++") != std::string::npos;
  const bool gcc = ctx.name.find("gcc") != std::string::npos || ctx.name.find("g++") != std::string::npos;

  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto options = take_driver_options(args, std::getenv("GRAFT_POLICY"));
  if (!options) {
    print_error(ctx.name, options.error().message);
    return 2;
  }
  ctx.policy = options->policy;
  ctx.verbose = options->verbose;
  const char* variable = gcc ? (cxx ? "GRAFT_GXX" : "GRAFT_GCC") : (cxx ? "GRAFT_CLANGXX" : "GRAFT_CLANG");
  const char* default_compiler =
      gcc ? (cxx ? GRAFT_GXX_PATH : GRAFT_GCC_PATH) : (cxx ? GRAFT_CLANGXX_PATH : GRAFT_CLANG_PATH);
  const char* compiler_env = std::getenv(variable);
  ctx.compiler = compiler_env && *compiler_env ? compiler_env : default_compiler;

  if (options->help) {
    std::fputs(fmt::format(fmt::runtime(gcc ? kGccHelp : kHelp), fmt::arg("name", ctx.name), fmt::arg("lang", cxx ? "++" : ""),
                           fmt::arg("clang", ctx.compiler), fmt::arg("default_policy", kDefaultPolicy),
                           fmt::arg("default_clang", GRAFT_CLANG_PATH), fmt::arg("default_clangxx", GRAFT_CLANGXX_PATH),
                           fmt::arg("default_gcc", GRAFT_GCC_PATH), fmt::arg("default_gxx", GRAFT_GXX_PATH),
                           fmt::arg("llvm_major", GRAFT_LLVM_MAJOR),
                           fmt::arg("clang_only", wrapped(kClangOnlyWarnings)), fmt::arg("store", store_description()))
                   .c_str(),
               stdout);
    return 0;
  }

  // The plugin reads the policy from the environment of its clang.
  setenv("GRAFT_POLICY", ctx.policy.c_str(), 1);
  if (!options->member_facts) setenv(kMemberFactsVariable, "off", 1);
  if (options->heap_types) setenv(kHeapTypesVariable, *options->heap_types ? "on" : "off", 1);
  if (const char* tags = std::getenv(kHeapTypesVariable); tags && std::strcmp(tags, "on") == 0) {
    if (gcc) {
      print_error(ctx.name, "heap type tags (--graft-heap-types=on, GRAFT_HEAP_TYPES=on) are made by graft-cc's "
                            "clang plugin only; build with graft-cc, or turn them off");
      return 2;
    }
    if (!options->member_facts) {
      print_error(ctx.name, "heap type tags need graft-cc's records: drop --graft-member-facts=off, or turn the tags off");
      return 2;
    }
  }

  // graft diff reads the binary's DWARF: a stripping link would leave it none.
  const std::vector<std::string> stripping = take_strip_options(args);
  const CommandLine cl = parse_command_line(std::move(args));
  if (!stripping.empty() && cl.mode == Mode::Link)
    print_error(ctx.name, "warning: " + strip_warning(stripping, cl.output.value_or("a.out")));
  if (cl.mode == Mode::PassThrough) exec_compiler(ctx, cl.args);

  Toolchain toolchain = gcc ? Toolchain::gnu(ctx.policy, include_near_driver()) : Toolchain::clang("");
  // clang's pass plugin, or gcc's under the balanced policy (strict and fast need none).
  if (cl.has_compilable_source() && (!gcc || ctx.policy == "balanced")) {
    auto found = gcc ? find_plugin("graft_gcc_policy.so", "GRAFT_GCC_PLUGIN", "graft-gcc's policy plugin")
                     : find_plugin("graft-pass.so", "GRAFT_PASS_PLUGIN", "the graft pass plugin");
    if (!found) {
      print_error(ctx.name, found.error().message);
      return 2;
    }
    toolchain.plugin = std::move(found.value());
    toolchain.verbose = ctx.verbose;
  }
  if (!cl.records_build()) exec_compiler(ctx, direct_arguments(cl, toolchain));

  // Linking an executable or a shared library.
  std::error_code ec;
  const std::string output = fs::absolute(cl.output.value_or("a.out"), ec).lexically_normal().string();
  if (ec || !worth_recording(cl, output)) exec_compiler(ctx, direct_arguments(cl, toolchain));
  return link_and_record(ctx, cl, toolchain, output);
}

}  // namespace graft::driver
