#include "diff/transformers.h"

#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "common/temp_dir.h"

extern char** environ;

namespace graft::diff {
namespace {
namespace fs = std::filesystem;

// What a transformer may call although the program never imports it: the
// compiler emits these for struct copies and loops, and none takes a lock.
const std::set<std::string> kAlwaysAvailable = {"memcpy", "memmove", "memset", "memcmp", "strlen", "strnlen",
                                                "strcmp", "strncmp"};

// The loop the updater runs in the target: one batch of objects per ptrace
// round trip, ending on pause(2) (x86-64 number 34), which graft sees at its
// entry stop and skips; `done` says how far it got if one faults. Not int3:
// should graft die while it runs, the thread waits in pause for graft's
// guardian (apply/guardian.h) instead of ending the process with SIGTRAP.
// struct graft_transform_batch is <graft/graft.h>'s, which the runner's file includes.
constexpr const char* kRunner = R"(
__attribute__((used, noinline, noreturn)) void graft_transform_run(struct graft_transform_batch *batch) {
  for (unsigned long i = 0; i < batch->count; i++) {
    batch->done = i;
    batch->transform(batch->from + i * batch->from_size, batch->to + i * batch->to_size);
  }
  batch->done = batch->count;
  for (;;) __asm__ volatile("syscall" : : "a"(34L) : "rcx", "r11", "memory");
}
)";

// The update-time code's runner: one call per ptrace round trip, ending on
// pause(2) like the transformers' runner; `done` says the function returned
// (else it faulted or was stopped).
// struct graft_update_call is <graft/graft.h>'s.
constexpr const char* kUpdateRunnerCode = R"(
__attribute__((used, noinline, noreturn)) void graft_update_run(struct graft_update_call *call) {
  if (call->kind == GRAFT_UPDATE_CALL_RERUN) {
    ((void (*)(void))call->function)();
    call->result = 0;
  } else if (call->kind == GRAFT_UPDATE_CALL_INIT) {
    call->result = ((int (*)(void *))call->function)(call->argument);
  } else {
    call->result = ((int (*)(void))call->function)();
  }
  call->done = 1;
  for (;;) __asm__ volatile("syscall" : : "a"(34L) : "rcx", "r11", "memory");
}
)";

constexpr const char* kInitPrefix = "graft_init__";
constexpr const char* kInitSizePrefix = "graft_init_size__";
constexpr const char* kOnUpdate = "graft_on_update";
constexpr const char* kAtCommit = "graft_at_commit";

std::string clang_path() {
  if (const char* env = std::getenv("GRAFT_CLANG"); env && *env) return env;
  return GRAFT_CLANG_PATH;
}

// <graft/graft.h>: next to the tools (<prefix>/bin/graft -> <prefix>/include), else the source tree's.
fs::path graft_include_dir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path().parent_path() / "include" / "graft" / "graft.h"))
    return self.parent_path().parent_path() / "include";
  return GRAFT_SOURCE_INCLUDE_DIR;
}

// Runs a command, its output into `log`; returns its exit status (or -1).
Result<int> run_logged(const std::vector<std::string>& command, const fs::path& log) {
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return errno_error(fmt::format("cannot run {}", command[0]), err);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return errno_error("waitpid", errno);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The first error clang reported, as one line.
std::string first_error(const fs::path& log) {
  std::ifstream in(log);
  std::string line, first;
  while (std::getline(in, line)) {
    if (line.find("error:") != std::string::npos) return line;
    if (first.empty() && !line.starts_with("In file included")) first = line;
  }
  return first.empty() ? "clang failed" : first;
}

std::string changed_list(const DataPlan& plan) {
  std::string out;
  for (int i : plan.transformable_structs())
    if (const std::string name = plan.new_name_of(plan.old_types.at(i).name); !transformable_tag(name).empty())
      out += (out.empty() ? "" : ", ") + transformable_tag(name);
  return out.empty() ? "none" : out;
}

// GRAFT_TRANSFORM(tag, ...) in the file's text, with its line, checked
// before compiling: a transformer for an unknown or unchanged type is the
// likeliest mistake, and the compiler would only say "incomplete type".
Status check_named_types(const fs::path& file, const DataPlan& plan) {
  std::ifstream in(file);
  if (!in) return make_error("cannot read transformer file {}", file.string());
  std::string line;
  const std::regex use(R"(GRAFT_TRANSFORM\s*\(\s*([A-Za-z_][A-Za-z0-9_]*))");
  for (int number = 1; std::getline(in, line); ++number)
    for (std::sregex_iterator it(line.begin(), line.end(), use), end; it != end; ++it) {
      const std::string tag = (*it)[1];
      const std::string name = "struct " + tag;
      // A renamed struct's transformer is named by its new name (its `to`);
      // `from` is the old layout under the same name (graft_old_types.h).
      if (const std::string to = plan.new_name_of(name); to != name && plan.transformable(name))
        return make_error("{}:{}: a transformer for {}, which the new version renames {}: name it by its new name, "
                          "GRAFT_TRANSFORM({}, from, to) (`from` is the old layout, `to` the new struct)",
                          file.string(), number, name, to, transformable_tag(to));
      if (plan.transformable(plan.old_name_of(name))) continue;
      if (plan.old_types.find(tag) >= 0)
        return make_error("{}:{}: a transformer for {}, a struct without a tag that only a typedef names: a "
                          "transformer needs its tag (typedef struct {} {{ ... }} {};), or keep the generated one, "
                          "which copies the members by name",
                          file.string(), number, tag, tag, tag);
      return make_error("{}:{}: a transformer for struct {}, which {}: transformers are for the structs whose layout "
                        "changed ({}); remove it",
                        file.string(), number, tag,
                        plan.old_types.find(name) >= 0 || plan.new_types.find(name) >= 0 ? "did not change"
                                                                                           : "is no struct of the program",
                        changed_list(plan));
    }
  return ok();
}

// The file's lines, comments dropped (a directive commented out is not
// compiled either); line N is at index N - 1.
Result<std::vector<std::string>> code_lines(const fs::path& file) {
  if (!fs::is_regular_file(file)) return make_error("transformer file {} does not exist", file.string());
  std::ifstream in(file);
  if (!in) return make_error("cannot read transformer file {}", file.string());
  std::vector<std::string> out;
  bool in_comment = false;  // inside /* ... */ since an earlier line
  for (std::string line; std::getline(in, line);) {
    std::string code;
    for (size_t k = 0; k < line.size();) {
      if (in_comment) {
        const size_t close = line.find("*/", k);
        if (close == std::string::npos) break;
        in_comment = false;
        k = close + 2;
      } else if (line.compare(k, 2, "//") == 0) {
        break;
      } else if (line.compare(k, 2, "/*") == 0) {
        in_comment = true;
        k += 2;
      } else {
        code += line[k++];
      }
    }
    out.push_back(std::move(code));
  }
  return out;
}

// A name the file gives GRAFT_INIT or GRAFT_RERUN, with its place.
struct NamedUse {
  std::string name;
  std::string where;  // FILE.c:LINE
};

// GRAFT_INIT(name, ...) and GRAFT_RERUN(name); (one per line), in file order.
Status read_update_uses(const fs::path& file, std::vector<NamedUse>& inits, std::vector<NamedUse>& reruns) {
  GRAFT_ASSIGN(const auto lines, code_lines(file));
  const std::regex init(R"(\bGRAFT_INIT\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,)");
  const std::regex rerun(R"(\bGRAFT_RERUN\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*;)");
  const std::regex named(R"(\bGRAFT_(INIT|RERUN)\b)");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = fmt::format("{}:{}", file.string(), i + 1);
    size_t found = 0;
    for (std::sregex_iterator it(line.begin(), line.end(), init), end; it != end; ++it, ++found)
      inits.push_back({(*it)[1], where});
    for (std::sregex_iterator it(line.begin(), line.end(), rerun), end; it != end; ++it, ++found)
      reruns.push_back({(*it)[1], where});
    const auto mentions = std::distance(std::sregex_iterator(line.begin(), line.end(), named), std::sregex_iterator());
    if (static_cast<size_t>(mentions) != found)
      return make_error("{}: write GRAFT_INIT(global, type, value) {{ ... }} and GRAFT_RERUN(function); each with "
                        "its name on the line where it starts", where);
  }
  return ok();
}

// The identity of the one function (or object) of `build` called `name`,
// as a global or a static of some file; none or several refuse, naming
// `use` at `where`.
Result<std::string> identity_by_name(const Build& build, const std::string& name, bool function,
                                     const std::string& where, const std::string& use) {
  std::vector<std::string> found;
  for (const auto& [id, def] : build.definitions())
    if (def.function == function && identity_named(id, name)) found.push_back(id);
  const char* what = function ? "function" : "global";
  if (found.empty())
    return make_error("{}: {}: the new version has no {} named {}", where, use, what, name);
  if (found.size() > 1) {
    std::string list;
    for (const auto& id : found) list += (list.empty() ? "" : ", ") + id;
    return make_error("{}: {}: {} is ambiguous, the new version has {} {}s of that name ({}): graft cannot tell which "
                      "one is meant; give one of them another name",
                      where, use, name, found.size(), what, list);
  }
  return found.front();
}

// The bytes of a symbol the object defines (a GRAFT_INIT's size).
std::optional<uint64_t> object_word(const ElfFile& object, const std::string& name) {
  for (const auto& s : object.symbols()) {
    if (s.name != name || s.shndx == SHN_UNDEF || s.size != 8) continue;
    for (const auto& section : object.sections())
      if (section.index == s.shndx && s.value + 8 <= section.data.size()) {
        uint64_t word = 0;
        std::memcpy(&word, section.data.data() + s.value, 8);
        return word;
      }
  }
  return std::nullopt;
}

// The size of a global of the new build: its DWARF type's, else its symbol's.
uint64_t global_size(const Build& build, const TypeTable& types, const std::string& id) {
  const auto linked = build.linked_symbols();
  auto symbol = linked.find(id);
  if (symbol == linked.end()) {
    const Definition* def = build.find(id);
    return def ? build.symbol(def->section.object, def->symbol).size : 0;
  }
  if (const Variable* v = types.variable_at(symbol->second->value)) return types.at(v->type).size;
  return symbol->second->size;
}

// GRAFT_INIT, GRAFT_RERUN and GRAFT_ON_UPDATE of the compiled file, checked
// against the new build and resolved to identities.
Result<UpdateCode> check_update_code(const fs::path& file, const ElfFile& object, const Build& old_build,
                                     const Build& new_build, const TypeTable& new_types) {
  std::vector<NamedUse> inits, reruns;
  GRAFT_TRY(read_update_uses(file, inits, reruns));
  std::set<std::string> defined;
  bool on_update = false, at_commit = false;
  for (const auto& s : object.symbols()) {
    if (s.shndx == SHN_UNDEF || s.type != STT_FUNC || s.bind == STB_LOCAL) continue;
    if (s.name.starts_with(kInitPrefix)) defined.insert(s.name.substr(std::string(kInitPrefix).size()));
    if (s.name == kOnUpdate) on_update = true;
    if (s.name == kAtCommit) at_commit = true;
  }
  UpdateCode out;
  std::set<std::string> seen;
  for (const auto& use : inits) {
    const std::string text = fmt::format("GRAFT_INIT({}, ...)", use.name);
    if (!seen.insert(use.name).second)
      return make_error("{}: {} a second time: write one initialiser per global", use.where, text);
    if (!defined.count(use.name))
      return make_error("{}: {} has no body: write GRAFT_INIT({}, type, value) {{ ...; return 0; }}", use.where, text,
                        use.name);
    GRAFT_ASSIGN(const std::string id, identity_by_name(new_build, use.name, false, use.where, text));
    const Definition& def = *new_build.find(id);
    if (old_build.find(id))
      return make_error("{}: {}: {} is in the running version too, where it has its value: GRAFT_INIT is for "
                        "globals the new version adds",
                        use.where, text, id);
    const ElfSection& section = new_build.section(def.section);
    if (is_constant_data(section) || (section.flags & SHF_TLS))
      return make_error("{}: {}: {} is {}: GRAFT_INIT is for writable globals the new version adds", use.where, text,
                        id, (section.flags & SHF_TLS) ? "thread-local" : "constant");
    const auto size = object_word(object, kInitSizePrefix + use.name);
    if (!size) return make_error("internal: {}: {} left no size in the object", use.where, text);
    const uint64_t expected = global_size(new_build, new_types, id);
    if (*size != expected)
      return make_error("{}: {}: the type given is {} bytes, but {} is {} bytes in the new version: give its type",
                        use.where, text, *size, id, expected);
    out.inits.push_back({id, kInitPrefix + use.name});
  }
  for (const auto& name : defined)
    if (!seen.count(name))
      return make_error("{} defines {}{} without GRAFT_INIT({}, type, value): write it with the macro", file.string(),
                        kInitPrefix, name, name);
  for (const auto& use : reruns) {
    const std::string text = fmt::format("GRAFT_RERUN({})", use.name);
    GRAFT_ASSIGN(const std::string id, identity_by_name(new_build, use.name, true, use.where, text));
    const auto linked = new_build.linked_symbols();
    auto symbol = linked.find(id);
    const FrameTypes* frame = symbol != linked.end() ? new_types.frame_at(symbol->second->value) : nullptr;
    if (!frame)
      return make_error("{}: {}: the new build's debug information does not describe {} (inlined everywhere?), so "
                        "graft cannot check that it takes no parameters; write GRAFT_ON_UPDATE() {{ ... }} instead",
                        use.where, text, id);
    if (frame->parameters > 0)
      return make_error("{}: {}: {} takes {} parameter{}, and a rerun passes none: write GRAFT_ON_UPDATE() {{ ... }} "
                        "to call it with its arguments",
                        use.where, text, id, frame->parameters, frame->parameters == 1 ? "" : "s");
    if (std::find(out.reruns.begin(), out.reruns.end(), id) == out.reruns.end()) out.reruns.push_back(id);
  }
  if (on_update) out.on_update = kOnUpdate;
  if (at_commit) out.at_commit = kAtCommit;
  if (!out.empty()) {
    out.runner = kUpdateRunner;
    out.file = file.string();
  }
  return out;
}

}  // namespace

Result<std::vector<DataDirective>> read_directives(const fs::path& file) {
  GRAFT_ASSIGN(const auto lines, code_lines(file));
  std::vector<DataDirective> out;
  const std::regex use(
      R"(\bGRAFT_(POINTS_TO|POINTS_INTO|UNION_MEMBER|OPAQUE|GLOBAL_POINTS_TO|GLOBAL_OPAQUE|FRAMES_ONLY|TAIL|RETYPES)\s*\(([^()]*)\))");
  const std::regex named(
      R"(\bGRAFT_(POINTS_TO|POINTS_INTO|UNION_MEMBER|OPAQUE|GLOBAL_POINTS_TO|GLOBAL_OPAQUE|FRAMES_ONLY|TAIL|RETYPES)\b)");
  for (int number = 1; number <= static_cast<int>(lines.size()); ++number) {
    const std::string& line = lines[number - 1];
    size_t found = 0;
    // The user's transformers, by name (one on a line, as the macro is written): for the planner.
    static const std::regex transform(R"(\bGRAFT_TRANSFORM\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,)");
    for (std::sregex_iterator it(line.begin(), line.end(), transform), end; it != end; ++it) {
      DataDirective d;
      d.kind = DataDirective::Kind::Transform;
      d.where = fmt::format("{}:{}", file.string(), number);
      d.args = {(*it)[1].str()};
      out.push_back(std::move(d));
    }
    for (std::sregex_iterator it(line.begin(), line.end(), use), end; it != end; ++it, ++found) {
      DataDirective d;
      d.kind = (*it)[1] == "POINTS_TO"          ? DataDirective::Kind::PointsTo
               : (*it)[1] == "POINTS_INTO"      ? DataDirective::Kind::PointsInto
               : (*it)[1] == "OPAQUE"           ? DataDirective::Kind::Opaque
               : (*it)[1] == "GLOBAL_POINTS_TO" ? DataDirective::Kind::GlobalPointsTo
               : (*it)[1] == "GLOBAL_OPAQUE"    ? DataDirective::Kind::GlobalOpaque
               : (*it)[1] == "FRAMES_ONLY"      ? DataDirective::Kind::FramesOnly
               : (*it)[1] == "TAIL"             ? DataDirective::Kind::Tail
               : (*it)[1] == "RETYPES"          ? DataDirective::Kind::Retypes
                                                : DataDirective::Kind::UnionMember;
      d.where = fmt::format("{}:{}", file.string(), number);
      std::stringstream args((*it)[2].str());
      for (std::string arg; std::getline(args, arg, ',');) {
        const size_t first = arg.find_first_not_of(" \t"), last = arg.find_last_not_of(" \t");
        d.args.push_back(first == std::string::npos ? "" : arg.substr(first, last - first + 1));
      }
      out.push_back(std::move(d));
    }
    const auto mentions = std::distance(std::sregex_iterator(line.begin(), line.end(), named), std::sregex_iterator());
    if (static_cast<size_t>(mentions) != found)
      return make_error("{}:{}: write each directive on one line, with plain arguments: "
                        "GRAFT_POINTS_TO(container, field, pointee); or "
                        "GRAFT_UNION_MEMBER(container, union_field, tag_field, tag_value, member); or "
                        "GRAFT_POINTS_INTO(container, field, pointee, member); or GRAFT_OPAQUE(container, field); "
                        "or GRAFT_GLOBAL_POINTS_TO(global, pointee); or GRAFT_GLOBAL_OPAQUE(global); or "
                        "GRAFT_FRAMES_ONLY(struct); or GRAFT_TAIL(struct, member); or "
                        "GRAFT_RETYPES(function, struct);",
                        file.string(), number);
  }
  return out;
}

Result<CompiledTransformers> compile_transformers(const fs::path& file, const std::vector<fs::path>& include_dirs,
                                                  const DataPlan& plan, const Build& old_build, const Build& new_build,
                                                  const TypeTable& new_types) {
  GRAFT_ASSIGN(auto directives, read_directives(file));
  GRAFT_TRY(check_named_types(file, plan));
  GRAFT_ASSIGN(TempDir temp, TempDir::create("graft-transform"));
  const fs::path header = temp.path() / "graft_old_types.h";
  const fs::path wrapper = temp.path() / "graft_transformers.c";
  const fs::path object = temp.path() / "graft_transformers.o";
  const fs::path log = temp.path() / "clang.log";
  {
    std::ofstream h(header), w(wrapper);
    h << old_types_header(plan, old_build.binary().path().string());
    w << "#include <graft/graft.h>\n#include \"graft_old_types.h\"\n#include \"" << fs::absolute(file).string()
      << "\"\n" << kRunner << kUpdateRunnerCode;
    if (!h || !w) return make_error("cannot write the transformer sources in {}", temp.path().string());
  }
  std::vector<std::string> command = {clang_path(), "-c", "-x", "c", "-std=gnu11", "-O2", "-g", "-fPIC",
                                      "-fno-stack-protector", "-ffunction-sections", "-fdata-sections", "-fno-common",
                                      "-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
                                      "-DGRAFT_TRANSFORMER=1", "-isystem", graft_include_dir().string(),
                                      "-I", temp.path().string(), "-I", fs::absolute(file).parent_path().string()};
  std::vector<fs::path> dirs = include_dirs;
  if (!new_build.source_root().empty()) dirs.push_back(new_build.source_root());
  for (const auto& d : dirs) {
    command.push_back("-I");
    command.push_back(d.string());
  }
  command.insert(command.end(), {wrapper.string(), "-o", object.string()});
  GRAFT_ASSIGN(int status, run_logged(command, log));
  if (status != 0) return make_error("cannot compile transformer file {}: {}", file.string(), first_error(log));

  CompiledTransformers out;
  GRAFT_ASSIGN(out.object, ElfFile::open(object));
  // What either version imports is in a loaded library when the patch is applied.
  std::set<std::string> imported;
  for (const Build* build : {&old_build, &new_build})
    for (const auto& s : build->binary().dynamic_symbols())
      if (s.shndx == SHN_UNDEF && !s.name.empty()) imported.insert(s.name);
  const std::string prefix = user_transformer_name("");
  for (const auto& s : out.object->symbols()) {
    if (s.name.empty() || s.type == STT_FILE || s.type == STT_SECTION || s.bind == STB_LOCAL) continue;
    if (s.shndx == SHN_UNDEF) {
      if (s.name.starts_with(prefix))
        return make_error("{} declares the transformer for struct {} but does not define it: write "
                          "GRAFT_TRANSFORM({}, from, to) {{ ... }}",
                          file.string(), s.name.substr(prefix.size()), s.name.substr(prefix.size()));
      if (!new_build.find(s.name) && !imported.count(s.name) && !kAlwaysAvailable.count(s.name)) {
        const auto local = std::find_if(new_build.definitions().begin(), new_build.definitions().end(),
                                        [&](const auto& d) { return d.first.ends_with("::" + s.name); });
        if (local != new_build.definitions().end())
          return make_error("{} uses {}, which is static in the program ({}): this file cannot call it; "
                            "GRAFT_RERUN({}); calls a static function that takes no parameters",
                            file.string(), s.name, local->first, s.name);
        return make_error("{} uses {}, which neither the program nor the libraries it imports define: a transformer "
                          "runs inside the program and can call only what is there (and must not allocate or lock)",
                          file.string(), s.name);
      }
      continue;
    }
    if (s.name == kTransformerRunner || s.name == kUpdateRunner || s.name == kOnUpdate || s.name == kAtCommit) continue;
    if (s.type == STT_FUNC && s.name.starts_with(kInitPrefix)) continue;  // check_update_code
    if (s.type == STT_FUNC && s.name.starts_with(prefix)) {
      const std::string name = plan.old_name_of("struct " + s.name.substr(prefix.size()));  // known by its old name
      if (!plan.transformable(name))
        return make_error("{} defines {}, but {} did not change (changed: {}); remove it", file.string(), s.name, name,
                          changed_list(plan));
      out.functions[name] = s.name;
      continue;
    }
    return make_error("{} defines the global {}: make it static (only transformers are visible to graft)",
                      file.string(), s.name);
  }
  GRAFT_ASSIGN(out.update_code, check_update_code(file, *out.object, old_build, new_build, new_types));
  // A transformer the planner counted on (GRAFT_TRANSFORM named it) must be defined.
  for (const auto& d : directives) {
    if (d.kind != DataDirective::Kind::Transform) continue;
    const std::string name = plan.old_name_of("struct " + d.args[0]);
    if (!out.functions.count(name) && plan.transformable(name))
      return make_error("{}: GRAFT_TRANSFORM({}, ...) has no body (a declaration only?): write the transformer's code "
                        "in {{ ... }}, or remove it",
                        d.where, d.args[0]);
  }
  directives.erase(std::remove_if(directives.begin(), directives.end(),
                                  [](const DataDirective& d) { return d.kind == DataDirective::Kind::Transform; }),
                   directives.end());
  if (out.functions.empty() && directives.empty() && out.update_code.empty()) {
    if (plan.changes.empty())
      return make_error("{} defines no update-time code, and the two versions change no struct layout, so there is "
                        "nothing to transform: write GRAFT_INIT(global, type, value) {{ ... }}, GRAFT_RERUN(function); "
                        "or GRAFT_ON_UPDATE() {{ ... }}, or drop --transform",
                        file.string());
    return make_error("{} defines no transformer and declares nothing: write GRAFT_TRANSFORM(type, from, to) {{ ... }} for one of the "
                      "changed structs ({}), a directive such as GRAFT_POINTS_TO(container, field, pointee), or "
                      "update-time code (GRAFT_INIT, GRAFT_RERUN, GRAFT_ON_UPDATE); "
                      "`graft diff OLD NEW --explain` prints each signature",
                      file.string(), changed_list(plan));
  }
  return out;
}

}  // namespace graft::diff
