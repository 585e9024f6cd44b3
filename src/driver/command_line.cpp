#include "driver/command_line.h"

#include <filesystem>

#include <algorithm>
#include <array>
#include <filesystem>
#include <utility>

namespace graft::driver {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Options of clang 14 whose value can be the next argument (Separate or
// JoinedOrSeparate in clang's Options.td), with the number of values they take.
struct SeparateOption {
  std::string_view name;
  int values;
};
constexpr std::array kSeparateOptions = std::to_array<SeparateOption>({
    {"-A", 1}, {"-B", 1}, {"-D", 1}, {"-F", 1}, {"-G", 1}, {"-I", 1}, {"-L", 1}, {"-MF", 1},
    {"-MJ", 1}, {"-MQ", 1}, {"-MT", 1}, {"-T", 1}, {"-Tbss", 1}, {"-Tdata", 1}, {"-Ttext", 1},
    {"-U", 1}, {"-Xanalyzer", 1}, {"-Xarch_device", 1}, {"-Xarch_host", 1}, {"-Xassembler", 1},
    {"-Xclang", 1}, {"-Xcuda-fatbinary", 1}, {"-Xcuda-ptxas", 1}, {"-Xlinker", 1},
    {"-Xopenmp-target", 1}, {"-Xpreprocessor", 1}, {"-allowable_client", 1}, {"-arch", 1},
    {"-arch_only", 1}, {"-arcmt-migrate-report-output", 1}, {"-b", 1}, {"-bundle_loader", 1},
    {"-ccc-arcmt-migrate", 1}, {"-ccc-gcc-name", 1}, {"-ccc-install-dir", 1},
    {"-ccc-objcmt-migrate", 1}, {"-client_name", 1}, {"-compatibility_version", 1},
    {"-current_version", 1}, {"-cxx-isystem", 1}, {"-dependency-dot", 1}, {"-dependency-file", 1},
    {"-dsym-dir", 1}, {"-dylib_file", 1}, {"-dylinker_install_name", 1}, {"-e", 1},
    {"-exported_symbols_list", 1}, {"-filelist", 1}, {"-fmodules-user-build-path", 1},
    {"-framework", 1}, {"-gcc-toolchain", 1}, {"-gen-cdb-fragment-path", 1}, {"-idirafter", 1},
    {"-iframework", 1}, {"-iframeworkwithsysroot", 1}, {"-imacros", 1}, {"-image_base", 1},
    {"-imultilib", 1}, {"-include", 1}, {"-include-pch", 1}, {"-init", 1}, {"-install_name", 1},
    {"-iprefix", 1}, {"-iquote", 1}, {"-isysroot", 1}, {"-isystem", 1}, {"-isystem-after", 1},
    {"-ivfsoverlay", 1}, {"-iwithprefix", 1}, {"-iwithprefixbefore", 1}, {"-iwithsysroot", 1},
    {"-l", 1}, {"-lazy_framework", 1}, {"-lazy_library", 1}, {"-meabi", 1}, {"-mllvm", 1},
    {"-module-dependency-dir", 1}, {"-mthread-model", 1}, {"-multiply_defined", 1},
    {"-multiply_defined_unused", 1}, {"-o", 1}, {"-object_path_lto", 1}, {"-pagezero_size", 1},
    {"-read_only_relocs", 1}, {"-reexport_framework", 1}, {"-reexport_library", 1},
    {"-resource-dir", 1}, {"-rpath", 1}, {"-sectalign", 3}, {"-sectcreate", 3},
    {"-sectobjectsymbols", 2}, {"-sectorder", 3}, {"-seg1addr", 1}, {"-seg_addr_table", 1},
    {"-seg_addr_table_filename", 1}, {"-segaddr", 2}, {"-segcreate", 3}, {"-segprot", 3},
    {"-segs_read_only_addr", 1}, {"-segs_read_write_addr", 1}, {"-serialize-diagnostics", 1},
    {"-stdlib++-isystem", 1}, {"-sub_library", 1}, {"-sub_umbrella", 1}, {"-target", 1},
    {"-u", 1}, {"-umbrella", 1}, {"-unexported_symbols_list", 1}, {"-weak_framework", 1},
    {"-weak_library", 1}, {"-weak_reference_mismatches", 1}, {"-working-directory", 1},
    {"-x", 1}, {"-z", 1}, {"--analyzer-output", 1}, {"--assert", 1}, {"--config", 1},
    {"--define-macro", 1}, {"--dyld-prefix", 1}, {"--encoding", 1}, {"--for-linker", 1},
    {"--force-link", 1}, {"--imacros", 1}, {"--include", 1}, {"--include-directory", 1},
    {"--include-directory-after", 1}, {"--include-prefix", 1}, {"--include-with-prefix", 1},
    {"--include-with-prefix-after", 1}, {"--include-with-prefix-before", 1}, {"--language", 1},
    {"--library-directory", 1}, {"--output", 1}, {"--param", 1}, {"--prefix", 1},
    {"--serialize-diagnostics", 1}, {"--stdlib", 1}, {"--sysroot", 1}, {"--undefine-macro", 1},
});

// Options that carry no value but decide the mode.
bool is_information_option(std::string_view arg) {
  return arg == "--version" || arg == "-version" || arg == "-###" || arg == "--help" || arg == "-help" ||
         arg == "--help-hidden" || starts_with(arg, "-print-") || starts_with(arg, "--print-") ||
         arg == "-dumpversion" || arg == "-dumpmachine" || arg == "-dumpspecs" || arg == "-dumpfullversion" ||
         starts_with(arg, "-cc1");
}

bool is_linker_only(std::string_view arg) {
  return starts_with(arg, "-l") || starts_with(arg, "-Wl,") || arg == "-Xlinker" || arg == "-z" || arg == "-T" ||
         arg == "-Tbss" || arg == "-Tdata" || arg == "-Ttext" || arg == "-rpath" || arg == "-u" || arg == "-e";
}

bool linker_arg_is_relocatable(std::string_view value) { return value == "-r" || value == "--relocatable"; }

bool linker_arg_is_shared(std::string_view value) {
  return value == "-shared" || value == "--shared" || value == "-Bshareable";
}

InputKind kind_of(std::string_view path, std::string_view language) {
  if (!language.empty()) return starts_with(language, "assembler") ? InputKind::Assembly : InputKind::Source;
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return InputKind::Other;
  const std::string_view ext = path.substr(dot + 1);
  if (ext == "o") return InputKind::Object;
  if (ext == "s" || ext == "S" || ext == "sx") return InputKind::Assembly;
  static constexpr std::string_view kSources[] = {"c", "cc", "cpp", "cxx", "C", "c++", "cp", "CPP", "i", "ii"};
  for (std::string_view source : kSources)
    if (ext == source) return InputKind::Source;
  return InputKind::Other;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

int separate_values(std::string_view arg) {
  for (const auto& option : kSeparateOptions)
    if (option.name == arg) return option.values;
  // -Xarch_<arch> <arg> and -Xopenmp-target=<triple> <arg>: joined and separate.
  if (starts_with(arg, "-Xarch_") || starts_with(arg, "-Xopenmp-target=")) return 1;
  return 0;
}

Result<DriverOptions> take_driver_options(std::vector<std::string>& args, const char* env_policy) {
  DriverOptions options;
  std::string policy;  // from --graft-policy=, "" when not given
  std::vector<std::string> rest;
  rest.reserve(args.size());
  for (auto& arg : args) {
    if (!starts_with(arg, "--graft-")) {
      rest.push_back(std::move(arg));
      continue;
    }
    if (starts_with(arg, "--graft-policy=")) {
      policy = arg.substr(std::string_view("--graft-policy=").size());
      if (!is_policy(policy))
        return make_error("invalid --graft-policy '{}' (expected strict, balanced or fast)", policy);
    } else if (arg == "--graft-policy") {
      return make_error("--graft-policy needs a value: --graft-policy=strict, balanced or fast");
    } else if (starts_with(arg, "--graft-member-facts=")) {
      const std::string value = arg.substr(std::string_view("--graft-member-facts=").size());
      if (value != "on" && value != "off")
        return make_error("invalid --graft-member-facts '{}' (expected on or off)", value);
      options.member_facts = value == "on";
    } else if (starts_with(arg, "--graft-heap-types=")) {
      const std::string value = arg.substr(std::string_view("--graft-heap-types=").size());
      if (value != "on" && value != "off")
        return make_error("invalid --graft-heap-types '{}' (expected on or off)", value);
      options.heap_types = value == "on";
    } else if (arg == "--graft-verbose") {
      options.verbose = true;
    } else if (arg == "--graft-help") {
      options.help = true;
    } else {
      return make_error("unknown option '{}' (see --graft-help)", arg);
    }
  }
  if (!policy.empty()) {
    options.policy = policy;
  } else if (env_policy != nullptr && *env_policy != '\0') {
    options.policy = env_policy;
    if (!is_policy(options.policy))
      return make_error("invalid GRAFT_POLICY '{}' (expected strict, balanced or fast)", options.policy);
  }
  args = std::move(rest);
  return options;
}

std::vector<std::string> take_strip_options(std::vector<std::string>& args) {
  auto strips = [](std::string_view value) {
    return value == "-s" || value == "-S" || value == "--strip-all" || value == "--strip-debug";
  };
  std::vector<std::string> dropped, rest;
  rest.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-s") {
      dropped.push_back(arg);
    } else if (arg == "-Xlinker" && i + 1 < args.size() && strips(args[i + 1])) {
      dropped.push_back(arg + " " + args[++i]);
    } else if (starts_with(arg, "-Wl,")) {
      std::string kept = "-Wl";
      std::string_view list = std::string_view(arg).substr(4);
      bool any = false;
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string_view value = list.substr(start, comma - start);
        if (strips(value)) {
          dropped.push_back("-Wl," + std::string(value));
        } else {
          kept += "," + std::string(value);
          any = true;
        }
        start = comma + 1;
      }
      if (any) rest.push_back(kept);
    } else {
      // The value of an option that takes one is never an option of its own.
      const size_t last = std::min(args.size() - 1, i + size_t(separate_values(arg)));
      for (; i < last; ++i) rest.push_back(args[i]);
      rest.push_back(args[i]);
    }
  }
  args = std::move(rest);
  return dropped;
}

std::string strip_warning(const std::vector<std::string>& dropped, const std::string& output) {
  std::string options;
  for (const auto& d : dropped) options += (options.empty() ? "" : " ") + d;
  return fmt::format("ignoring {}: graft diff needs the debug information it strips; to ship a stripped binary, "
                     "strip a copy (objcopy --strip-debug {} {}.stripped) and keep {} for graft diff",
                     options, output, output, output);
}

bool CommandLine::has_compilable_source() const {
  return std::any_of(inputs.begin(), inputs.end(), [](const Input& i) { return i.kind == InputKind::Source; });
}
bool CommandLine::has_assembly() const {
  return std::any_of(inputs.begin(), inputs.end(), [](const Input& i) { return i.kind == InputKind::Assembly; });
}
bool CommandLine::has_sources() const { return has_compilable_source() || has_assembly(); }

CommandLine parse_command_line(std::vector<std::string> args) {
  CommandLine cl;
  cl.args = std::move(args);
  cl.roles.assign(cl.args.size(), Role::Option);
  bool information = false, preprocess = false, compile = false, shared = false, relocatable = false;
  std::string language;  // -x in effect
  // What one linker argument (of -Xlinker or -Wl,) says about the link.
  auto linker_arg = [&](std::string_view value) {
    if (value.find("--build-id") != std::string_view::npos) cl.has_build_id = true;
    if (linker_arg_is_shared(value)) shared = true;
    if (linker_arg_is_relocatable(value)) relocatable = true;
  };
  const size_t n = cl.args.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& arg = cl.args[i];
    if (arg == "-" || arg.empty() || arg[0] != '-') {
      if (!arg.empty() && arg[0] == '@') {
        cl.response_file = true;  // passed through, not looked into
        continue;
      }
      cl.roles[i] = Role::Input;
      cl.inputs.push_back(Input{i, arg, kind_of(arg, language), language});
      continue;
    }
    // Options with a separate value: the value is not an input.
    if (const int values = separate_values(arg); values > 0) {
      const size_t last = std::min(n - 1, i + size_t(values));
      Role role = Role::Option;
      if (arg == "-o" || arg == "--output") {
        role = Role::Output;
        if (i + 1 < n) cl.output = cl.args[i + 1];
      } else if (arg == "-x" || arg == "--language") {
        role = Role::Language;
        if (i + 1 < n) language = cl.args[i + 1] == "none" ? "" : cl.args[i + 1];
      } else if (is_linker_only(arg)) {
        role = Role::LinkerOnly;
        if (arg == "-Xlinker" && i + 1 < n) linker_arg(cl.args[i + 1]);
      } else if (arg == "-MF") {
        cl.has_MF = true;
      } else if (arg == "-MT" || arg == "-MQ") {
        cl.has_MT = true;
      }
      for (size_t j = i; j <= last; ++j) cl.roles[j] = role;
      i = last;
      continue;
    }
    // Joined forms of the options above, and value-less options.
    if (starts_with(arg, "--output=")) {
      cl.roles[i] = Role::Output;
      cl.output = arg.substr(9);
    } else if (starts_with(arg, "-o") && !starts_with(arg, "-obj")) {
      cl.roles[i] = Role::Output;
      cl.output = arg.substr(2);
    } else if (starts_with(arg, "-x") || starts_with(arg, "--language=")) {
      cl.roles[i] = Role::Language;
      const std::string value = arg[1] == 'x' ? arg.substr(2) : arg.substr(11);
      language = value == "none" ? "" : value;
    } else if (is_information_option(arg)) {
      information = true;
    } else if (arg == "-E" || arg == "--preprocess" || arg == "-M" || arg == "-MM" || arg == "--dependencies" ||
               arg == "--user-dependencies" || arg == "-fsyntax-only" || arg == "--precompile" ||
               arg == "-emit-ast") {
      preprocess = true;
    } else if (arg == "-c" || arg == "--compile" || arg == "-S" || arg == "--assemble") {
      compile = true;
    } else if (arg == "-MD" || arg == "-MMD" || arg == "--write-dependencies" || arg == "--write-user-dependencies") {
      cl.dependency_file = true;
    } else if (starts_with(arg, "-MF")) {
      cl.has_MF = true;
    } else if (starts_with(arg, "-MT") || starts_with(arg, "-MQ")) {
      cl.has_MT = true;
    } else if (arg == "-shared" || arg == "--shared" || arg == "-dynamiclib") {
      shared = true;
    } else if (arg == "-r") {
      relocatable = true;
    } else if (starts_with(arg, "-Wl,")) {
      cl.roles[i] = Role::LinkerOnly;
      std::string_view rest = std::string_view(arg).substr(4);
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        linker_arg(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
    } else if (is_linker_only(arg)) {
      cl.roles[i] = Role::LinkerOnly;  // -lfoo
    }
  }
  if (information || preprocess || (cl.inputs.empty() && !cl.response_file)) {
    cl.mode = Mode::PassThrough;
  } else if (compile) {
    cl.mode = Mode::Compile;
  } else {
    cl.mode = Mode::Link;
    cl.executable = !shared && !relocatable;
    cl.shared_library = shared && !relocatable;
  }
  return cl;
}

std::vector<std::string> gcc_policy_flags(const std::string& policy) {
  if (policy == "strict") return {"-flive-patching=inline-only-static", "-fno-inline"};
  // A static function called once (main's and a service loop's helpers, often)
  // is not inlined: a change to it stays out of the function that never returns.
  if (policy == "balanced") return {"-flive-patching=inline-clone", "-fno-inline-functions-called-once"};
  return {};
}

std::vector<std::string> graft_compile_flags(const Toolchain& toolchain) {
  std::vector<std::string> flags(std::begin(kGraftFlags), std::end(kGraftFlags));
  std::string include = toolchain.include;
  if (toolchain.gcc) {
    flags.insert(flags.end(), std::begin(kGccFlags), std::end(kGccFlags));
    append(flags, gcc_policy_flags(toolchain.policy));
    if (!toolchain.plugin.empty()) {
      flags.push_back("-fplugin=" + toolchain.plugin);
      if (toolchain.verbose) flags.push_back("-fplugin-arg-graft_gcc_policy-verbose");
    }
  } else {
    flags.push_back("-fpass-plugin=" + toolchain.plugin);
    // <graft/graft.h> (update points) from the same prefix as the plugin:
    // <prefix>/lib/graft-pass.so or <prefix>/lib/graft/graft-pass.so -> <prefix>/include.
    for (std::filesystem::path dir = std::filesystem::path(toolchain.plugin).parent_path();
         include.empty() && !dir.empty() && dir != dir.root_path(); dir = dir.parent_path())
      if (dir.filename() == "lib") {
        if (std::filesystem::exists(dir.parent_path() / "include" / "graft" / "graft.h"))
          include = (dir.parent_path() / "include").string();
        break;
      }
  }
  if (!include.empty()) flags.push_back("-isystem" + include);
  return flags;
}

std::vector<std::string> clang_only_warning_flags(const CommandLine& cl) {
  if (std::find(cl.args.begin(), cl.args.end(), "-Werror") == cl.args.end()) return {};
  std::vector<std::string> out;
  for (const char* warning : kClangOnlyWarnings)
    if (std::find(cl.args.begin(), cl.args.end(), std::string("-Werror=") + warning) == cl.args.end())
      out.push_back(std::string("-Wno-error=") + warning);
  return out;
}

namespace {
// What a compilation of C/C++ source gets: the graft flags, and with clang
// the -Wno-error list for the user's -Werror.
std::vector<std::string> source_flags(const CommandLine& cl, const Toolchain& toolchain) {
  std::vector<std::string> out = graft_compile_flags(toolchain);
  if (!toolchain.gcc) append(out, clang_only_warning_flags(cl));
  return out;
}
}  // namespace

std::vector<std::string> direct_arguments(const CommandLine& cl, const Toolchain& toolchain) {
  std::vector<std::string> out = cl.args;
  if (cl.mode == Mode::PassThrough) return out;
  // Assembly alone: none of the graft flags apply (clang would warn that they
  // are unused, and -g breaks assembly that has its own .file/.loc).
  if (cl.has_compilable_source()) append(out, source_flags(cl, toolchain));
  if (cl.records_build() && !cl.has_build_id) out.push_back(kBuildIdFlag);
  return out;
}

std::vector<std::string> source_compile_arguments(const CommandLine& cl, const Input& input,
                                                  const std::string& object, const Toolchain& toolchain) {
  std::vector<std::string> out;
  out.reserve(cl.args.size() + 16);
  for (size_t i = 0; i < cl.args.size(); ++i) {
    if (cl.roles[i] == Role::Option) out.push_back(cl.args[i]);
  }
  // clang -MD while linking writes <output minus extension>.d naming the
  // output (or <input stem>.d naming <input stem>.o); keep that file.
  if (cl.dependency_file && !cl.has_MF) {
    if (cl.output) {
      const size_t slash = cl.output->rfind('/');
      const size_t dot = cl.output->rfind('.');
      const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
      out.push_back("-MF");
      out.push_back((has_ext ? cl.output->substr(0, dot) : *cl.output) + ".d");
      if (!cl.has_MT) {
        out.push_back("-MT");
        out.push_back(*cl.output);
      }
    } else {
      std::string stem = input.path.substr(input.path.rfind('/') + 1);
      if (const size_t dot = stem.rfind('.'); dot != std::string::npos) stem.resize(dot);
      out.push_back("-MF");
      out.push_back(stem + ".d");
      if (!cl.has_MT) {
        out.push_back("-MT");
        out.push_back(stem + ".o");
      }
    }
  }
  // The link flags the user gave are unused here; say nothing about them
  // (gcc says nothing, and does not know the option).
  if (!toolchain.gcc) out.push_back("-Qunused-arguments");
  if (input.kind == InputKind::Source) append(out, source_flags(cl, toolchain));
  out.push_back("-c");
  if (!input.language.empty()) {
    out.push_back("-x");
    out.push_back(input.language);
  }
  out.push_back(input.path);
  out.push_back("-o");
  out.push_back(object);
  return out;
}

std::vector<std::string> link_arguments(const CommandLine& cl, const std::vector<std::string>& source_objects) {
  std::vector<std::string> out;
  out.reserve(cl.args.size() + 1);
  size_t next_input = 0, next_object = 0;
  for (size_t i = 0; i < cl.args.size(); ++i) {
    if (cl.roles[i] == Role::Language) continue;  // every input left is linker input
    if (cl.roles[i] == Role::Input) {
      const Input& input = cl.inputs[next_input++];
      const bool compiled = input.kind == InputKind::Source || input.kind == InputKind::Assembly;
      out.push_back(compiled ? source_objects.at(next_object++) : cl.args[i]);
      continue;
    }
    out.push_back(cl.args[i]);
  }
  if (cl.records_build() && !cl.has_build_id) out.push_back(kBuildIdFlag);
  return out;
}

std::vector<std::string> linked_objects(const CommandLine& cl, const std::vector<std::string>& source_objects) {
  std::vector<std::string> out;
  size_t next_object = 0;
  for (const Input& input : cl.inputs) {
    if (input.kind == InputKind::Source || input.kind == InputKind::Assembly) {
      out.push_back(source_objects.at(next_object++));
    } else if (input.kind == InputKind::Object) {
      out.push_back(input.path);
    }
  }
  return out;
}

bool worth_recording(const CommandLine& cl, std::string_view output) {
  if (output == "/dev/null") return false;
  // autoconf: "checking whether the C compiler works" links conftest.c to a.out.
  for (const Input& input : cl.inputs) {
    const std::string_view path = input.path;
    const std::string_view name = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
    if (starts_with(name, "conftest.")) return false;
  }
  const size_t slash = output.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? output : output.substr(slash + 1);
  const std::string_view dir = slash == std::string_view::npos ? std::string_view() : output.substr(0, slash);
  const std::string_view parent = dir.substr(dir.rfind('/') == std::string_view::npos ? 0 : dir.rfind('/') + 1);
  if (name == "conftest" || starts_with(name, "conftest.")) return false;  // autoconf
  if (starts_with(name, "cmTC_")) return false;                            // CMake try_compile
  if (starts_with(parent, "CompilerId")) return false;                     // CMake compiler identification
  if (output.find("/CMakeFiles/CMakeScratch/") != std::string_view::npos ||
      output.find("/CMakeFiles/CMakeTmp/") != std::string_view::npos)
    return false;
  if (output.find("/meson-private/") != std::string_view::npos) return false;  // Meson sanity checks
  return true;
}

std::string shell_quote(const std::vector<std::string>& command) {
  std::string out;
  for (const std::string& arg : command) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             std::string_view("-_./=,:+@%^").find(c) != std::string_view::npos;
    });
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace graft::driver
