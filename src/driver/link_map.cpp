#include "driver/link_map.h"

#include <algorithm>

namespace graft::driver {
namespace {

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// "lib/libfoo.a(a.o)" -> {"lib/libfoo.a", "a.o"}; a path alone -> {"", path}.
MapMember split_member(std::string_view spec) {
  const size_t open = spec.find('(');
  if (open == std::string_view::npos || open == 0 || !spec.ends_with(')')) return {"", std::string(spec)};
  return {std::string(spec.substr(0, open)), std::string(spec.substr(open + 1, spec.size() - open - 2))};
}

void add_once(std::vector<MapMember>& to, MapMember member) {
  if (std::find(to.begin(), to.end(), member) == to.end()) to.push_back(std::move(member));
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::optional<std::string> map_option_value(std::string_view value) {
  for (std::string_view prefix : {"-Map=", "--Map="})
    if (value.starts_with(prefix)) return std::string(value.substr(prefix.size()));
  return std::nullopt;
}

}  // namespace

std::vector<MapMember> archive_members_in_map(std::string_view map) {
  std::vector<MapMember> out;
  const std::vector<std::string_view> lines = lines_of(map);
  // GNU ld ("... to satisfy reference by file (symbol)") and gold ("...
  // because of file (symbol)"): one member per line that does not start with
  // a blank (a long name pushes its reason to the next, indented, line),
  // until the blank line that ends the list.
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].starts_with("Archive member included")) continue;
    size_t j = i + 1;
    while (j < lines.size() && blank(lines[j])) ++j;
    for (; j < lines.size() && !blank(lines[j]); ++j) {
      const std::string_view line = lines[j];
      if (line[0] == ' ' || line[0] == '\t') continue;
      add_once(out, split_member(line.substr(0, line.find_first_of(" \t"))));
    }
    return out;
  }
  // lld: "     VMA      LMA     Size Align Out In Symbol", an input section
  // as "lib/libfoo.a(a.o):(.text.foo)".
  for (std::string_view line : lines) {
    const size_t section = line.find("):(");
    if (section == std::string_view::npos) continue;
    const size_t start = line.find_last_of(" \t", section) + 1;  // npos + 1 == 0
    add_once(out, split_member(line.substr(start, section + 1 - start)));
  }
  return out;
}

std::optional<std::string> user_map_file(const CommandLine& cl) {
  std::optional<std::string> found;
  for (size_t i = 0; i < cl.args.size(); ++i) {
    const std::string& arg = cl.args[i];
    if (arg == "-Xlinker" && i + 1 < cl.args.size()) {
      if (auto value = map_option_value(cl.args[i + 1])) found = value;
      else if ((cl.args[i + 1] == "-Map" || cl.args[i + 1] == "--Map") && i + 3 < cl.args.size() &&
               cl.args[i + 2] == "-Xlinker")
        found = cl.args[i + 3];
    } else if (arg.starts_with("-Wl,")) {
      std::vector<std::string> values;
      std::string_view rest = std::string_view(arg).substr(4);
      for (size_t start = 0; start <= rest.size();) {
        const size_t comma = std::min(rest.find(',', start), rest.size());
        values.emplace_back(rest.substr(start, comma - start));
        start = comma + 1;
      }
      for (size_t v = 0; v < values.size(); ++v) {
        if (auto value = map_option_value(values[v])) found = value;
        else if ((values[v] == "-Map" || values[v] == "--Map") && v + 1 < values.size()) found = values[v + 1];
      }
    }
  }
  return found;
}

std::vector<LibraryOption> library_options(const CommandLine& cl) {
  std::vector<LibraryOption> out;
  for (size_t i = 0; i < cl.args.size(); ++i) {
    const std::string& arg = cl.args[i];
    if (arg == "-l" && i + 1 < cl.args.size()) out.push_back({i, cl.args[i + 1]});
    else if (arg.starts_with("-l") && arg.size() > 2 && cl.roles[i] == Role::LinkerOnly) out.push_back({i, arg.substr(2)});
    if (separate_values(arg) > 0) i += separate_values(arg);
  }
  return out;
}

std::vector<std::string> library_directories(const CommandLine& cl) {
  std::vector<std::string> out;
  for (size_t i = 0; i < cl.args.size(); ++i) {
    const std::string& arg = cl.args[i];
    if ((arg == "-L" || arg == "--library-directory") && i + 1 < cl.args.size()) out.push_back(cl.args[i + 1]);
    else if (arg.starts_with("-L") && arg.size() > 2) out.push_back(arg.substr(2));
    else if (arg.starts_with("--library-directory=")) out.push_back(arg.substr(20));
    if (separate_values(arg) > 0) i += separate_values(arg);
  }
  return out;
}

std::string archive_file_name(const std::string& library) {
  return library.starts_with(':') ? library.substr(1) : "lib" + library + ".a";
}

bool may_link_archives(const CommandLine& cl) {
  return !library_options(cl).empty() ||
         std::any_of(cl.inputs.begin(), cl.inputs.end(), [](const Input& i) { return i.kind == InputKind::Other; });
}

}  // namespace graft::driver
