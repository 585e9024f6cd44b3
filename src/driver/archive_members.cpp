#include "driver/archive_members.h"

#include <elf.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "driver/link_map.h"
#include "elf/archive.h"
#include "elf/elf_file.h"

namespace graft::driver {
namespace fs = std::filesystem;
namespace {

fs::path canonical_or_normal(const fs::path& path) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? fs::absolute(path).lexically_normal() : out;
}

// An archive the user named, and where on the command line.
struct UserArchive {
  fs::path path;  // canonical
  size_t arg = 0;
};

// The archives the user named by path: inputs that are neither sources nor objects.
std::vector<UserArchive> archive_inputs(const CommandLine& cl) {
  std::vector<UserArchive> out;
  for (const Input& input : cl.inputs)
    if (input.kind == InputKind::Other && is_archive(input.path)) out.push_back({canonical_or_normal(input.path), input.arg});
  return out;
}

// Where the linker would find -l's archive among the user's -L directories
// (GNU ld names a thin archive's members by their own paths only, so the
// thin archives must be known to recognise them).
std::vector<UserArchive> searched_archives(const CommandLine& cl) {
  std::vector<UserArchive> out;
  const std::vector<std::string> dirs = library_directories(cl);
  for (const LibraryOption& library : library_options(cl))
    for (const std::string& dir : dirs) {
      const fs::path candidate = fs::path(dir) / archive_file_name(library.name);
      if (is_archive(candidate)) {
        out.push_back({canonical_or_normal(candidate), library.arg});
        break;
      }
    }
  return out;
}

// The argument that made the linker open `archive`: the same file given as
// an input, or the -l whose archive has its file name. npos if the user did
// not name it (libgcc.a, libc_nonshared.a: the compiler's own).
size_t user_argument(const CommandLine& cl, const std::vector<UserArchive>& inputs, const fs::path& archive) {
  for (const UserArchive& input : inputs)
    if (input.path == archive) return input.arg;
  for (const LibraryOption& library : library_options(cl))
    if (archive.filename() == archive_file_name(library.name)) return library.arg;
  return std::string::npos;
}

Status write_file(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return make_error("cannot write {}", path.string());
  return ok();
}

}  // namespace

std::string LinkedMember::label() const { return archive.filename().string() + "(" + fs::path(name).filename().string() + ")"; }

bool compiled_by_graft_cc(const fs::path& object) {
  auto elf = ElfFile::open(object);
  if (!elf) return false;
  const auto& sections = elf.value()->sections();
  const bool holds_something = std::any_of(sections.begin(), sections.end(),
                                           [](const ElfSection& s) { return (s.flags & SHF_ALLOC) && s.size > 0; });
  if (!holds_something) return true;
  if (!elf.value()->section(".debug_info")) return false;
  const auto& symbols = elf.value()->symbols();
  const bool defines_functions = std::any_of(symbols.begin(), symbols.end(), [](const ElfSymbol& s) {
    return s.type == STT_FUNC && s.shndx != SHN_UNDEF;
  });
  const bool patchable = std::any_of(sections.begin(), sections.end(), [](const ElfSection& s) {
    return s.name.starts_with("__patchable_function_entries");
  });
  return !defines_functions || patchable;
}

Result<std::vector<LinkedMember>> linked_archive_members(const CommandLine& cl, std::string_view map,
                                                         const fs::path& extract_dir) {
  const std::vector<UserArchive> inputs = archive_inputs(cl);
  std::vector<UserArchive> thin_candidates = inputs;
  for (UserArchive& searched : searched_archives(cl)) thin_candidates.push_back(std::move(searched));

  std::map<fs::path, Archive> archives;  // read once each
  auto archive_at = [&](const fs::path& path) -> Result<const Archive*> {
    auto it = archives.find(path);
    if (it == archives.end()) {
      GRAFT_ASSIGN(Archive read, read_archive(path));
      it = archives.emplace(path, std::move(read)).first;
    }
    return &it->second;
  };

  std::vector<LinkedMember> out;
  size_t extracted = 0;
  for (const MapMember& listed : archive_members_in_map(map)) {
    const Archive* archive = nullptr;
    const ArchiveMember* member = nullptr;
    size_t arg = std::string::npos;
    if (listed.archive.empty()) {
      // GNU ld names a thin archive's member by its own path.
      const fs::path file = canonical_or_normal(listed.member);
      for (const UserArchive& candidate : thin_candidates) {
        GRAFT_ASSIGN(archive, archive_at(candidate.path));
        if (!archive->thin) continue;
        for (const ArchiveMember& m : archive->members)
          if (canonical_or_normal(m.file) == file) member = &m;
        if (member) {
          arg = candidate.arg;
          break;
        }
      }
      if (!member) continue;  // an object of the compiler's own thin archive, if any
    } else {
      const fs::path path = canonical_or_normal(listed.archive);
      arg = user_argument(cl, inputs, path);
      if (arg == std::string::npos) continue;
      GRAFT_ASSIGN(archive, archive_at(path));
      size_t matches = 0;
      for (const ArchiveMember& m : archive->members) {
        const bool same = m.name == listed.member ||
                          (archive->thin && canonical_or_normal(m.file) == canonical_or_normal(listed.member));
        if (!same) continue;
        ++matches;
        if (!member) member = &m;
      }
      if (!member)
        return make_error("the linker took {}({}), which {} does not hold", listed.archive, listed.member,
                          listed.archive);
      if (matches > 1)
        return make_error("{} holds {} members named {} and the linker does not say which it took: give them "
                          "distinct names (ar rcs replaces a member of the same name; ar q appends another)",
                          listed.archive, matches, listed.member);
    }
    LinkedMember linked;
    linked.archive = archive->path;
    linked.name = member->name;
    linked.arg = arg;
    if (archive->thin) {
      linked.object = member->file;
    } else {
      // One directory per member keeps its name (the store names it NNNN-<name>.o).
      linked.object = extract_dir / std::to_string(extracted++) / fs::path(member->name).filename();
      GRAFT_TRY(write_file(linked.object, member->bytes));
    }
    linked.compiled_by_graft = compiled_by_graft_cc(linked.object);
    out.push_back(std::move(linked));
  }
  // Link order: each archive where the command line names it.
  std::stable_sort(out.begin(), out.end(), [](const LinkedMember& a, const LinkedMember& b) { return a.arg < b.arg; });
  return out;
}

std::vector<std::string> foreign_member_warnings(const std::vector<LinkedMember>& members, const std::string& output) {
  std::map<fs::path, std::vector<std::string>> by_archive;
  for (const LinkedMember& m : members)
    if (!m.compiled_by_graft) by_archive[m.archive].push_back(m.name);
  std::vector<std::string> out;
  for (const auto& [archive, names] : by_archive) {
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
    out.push_back(fmt::format("{} member{} of {} linked into {} {} not compiled by graft-cc ({}): graft diff cannot "
                              "patch {} code and refuses a change to it; build {} from objects compiled with graft-cc "
                              "(CC=graft-cc)",
                              names.size(), names.size() == 1 ? "" : "s", archive.string(), output,
                              names.size() == 1 ? "was" : "were", list, names.size() == 1 ? "its" : "their",
                              archive.filename().string()));
  }
  return out;
}

}  // namespace graft::driver
