#include "diff/transformers.h"

#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
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
// round trip, ending on a trap; `done` says how far it got if one faults.
// struct graft_transform_batch is <graft/graft.h>'s, which the runner's file includes.
constexpr const char* kRunner = R"(
__attribute__((used, noinline, noreturn)) void graft_transform_run(struct graft_transform_batch *batch) {
  for (unsigned long i = 0; i < batch->count; i++) {
    batch->done = i;
    batch->transform(batch->from + i * batch->from_size, batch->to + i * batch->to_size);
  }
  batch->done = batch->count;
  for (;;) __asm__ volatile("int3");
}
)";

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
  for (const auto& c : plan.changes)
    if (const std::string tag = transformable_tag(c.name); !tag.empty() && plan.old_types.at(c.old_type).kind == TypeKind::Struct)
      out += (out.empty() ? "" : ", ") + tag;
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
      const bool changed = std::any_of(plan.changes.begin(), plan.changes.end(), [&](const TypeChange& c) {
        return c.name == name && plan.old_types.at(c.old_type).kind == TypeKind::Struct;
      });
      if (changed) continue;
      return make_error("{}:{}: a transformer for struct {}, which {}: transformers are for the structs whose layout "
                        "changed ({}); remove it",
                        file.string(), number, tag,
                        plan.old_types.find(name) >= 0 || plan.new_types.find(name) >= 0 ? "did not change"
                                                                                           : "is no struct of the program",
                        changed_list(plan));
    }
  return ok();
}

}  // namespace

Result<std::vector<DataDirective>> read_directives(const fs::path& file) {
  if (!fs::is_regular_file(file)) return make_error("transformer file {} does not exist", file.string());
  std::ifstream in(file);
  if (!in) return make_error("cannot read transformer file {}", file.string());
  std::vector<DataDirective> out;
  const std::regex use(R"(\bGRAFT_(POINTS_TO|POINTS_INTO|UNION_MEMBER|OPAQUE)\s*\(([^()]*)\))");
  const std::regex named(R"(\bGRAFT_(POINTS_TO|POINTS_INTO|UNION_MEMBER|OPAQUE)\b)");
  std::string line;
  bool in_comment = false;  // inside /* ... */ since an earlier line
  for (int number = 1; std::getline(in, line); ++number) {
    // A directive commented out is not compiled either: comments are dropped.
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
    line = code;
    size_t found = 0;
    for (std::sregex_iterator it(line.begin(), line.end(), use), end; it != end; ++it, ++found) {
      DataDirective d;
      d.kind = (*it)[1] == "POINTS_TO"     ? DataDirective::Kind::PointsTo
               : (*it)[1] == "POINTS_INTO" ? DataDirective::Kind::PointsInto
               : (*it)[1] == "OPAQUE"      ? DataDirective::Kind::Opaque
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
                        "GRAFT_POINTS_INTO(container, field, pointee, member); or GRAFT_OPAQUE(container, field);",
                        file.string(), number);
  }
  return out;
}

Result<CompiledTransformers> compile_transformers(const fs::path& file, const std::vector<fs::path>& include_dirs,
                                                  const DataPlan& plan, const Build& old_build, const Build& new_build) {
  GRAFT_ASSIGN(auto directives, read_directives(file));
  if (plan.changes.empty())
    return make_error("{}: the two versions change no struct layout, so there is nothing to transform; drop --transform",
                      file.string());
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
      << "\"\n" << kRunner;
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
  std::set<std::string> imported;
  for (const auto& s : old_build.binary().dynamic_symbols())
    if (s.shndx == SHN_UNDEF && !s.name.empty()) imported.insert(s.name);
  const std::string prefix = user_transformer_name("");
  for (const auto& s : out.object->symbols()) {
    if (s.name.empty() || s.type == STT_FILE || s.type == STT_SECTION || s.bind == STB_LOCAL) continue;
    if (s.shndx == SHN_UNDEF) {
      if (s.name.starts_with(prefix))
        return make_error("{} declares the transformer for struct {} but does not define it: write "
                          "GRAFT_TRANSFORM({}, from, to) {{ ... }}",
                          file.string(), s.name.substr(prefix.size()), s.name.substr(prefix.size()));
      if (!new_build.find(s.name) && !imported.count(s.name) && !kAlwaysAvailable.count(s.name))
        return make_error("{} uses {}, which neither the program nor the libraries it imports define: a transformer "
                          "runs inside the program and can call only what is there (and must not allocate or lock)",
                          file.string(), s.name);
      continue;
    }
    if (s.name == kTransformerRunner) continue;
    if (s.type == STT_FUNC && s.name.starts_with(prefix)) {
      const std::string name = "struct " + s.name.substr(prefix.size());
      if (std::none_of(plan.changes.begin(), plan.changes.end(), [&](const TypeChange& c) { return c.name == name; }))
        return make_error("{} defines {}, but {} did not change (changed: {}); remove it", file.string(), s.name, name,
                          changed_list(plan));
      out.functions[name] = s.name;
      continue;
    }
    return make_error("{} defines the global {}: make it static (only transformers are visible to graft)",
                      file.string(), s.name);
  }
  if (out.functions.empty() && directives.empty())
    return make_error("{} defines no transformer and declares nothing: write GRAFT_TRANSFORM(type, from, to) {{ ... }} for one of the "
                      "changed structs ({}), or a directive such as GRAFT_POINTS_TO(container, field, pointee); "
                      "`graft diff OLD NEW --explain` prints each signature",
                      file.string(), changed_list(plan));
  return out;
}

}  // namespace graft::diff
