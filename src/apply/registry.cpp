#include "apply/registry.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "target/process.h"

namespace graft::registry {

std::string memfd_name(int sequence, const std::string& patch_id) {
  return fmt::format("graft:{}:{}", sequence, patch_id);
}

std::string encode(const Record& r) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : r.entries)
    entries.push_back({{"identity", e.identity}, {"address", e.address}, {"old", e.old_bytes}, {"new", e.new_bytes},
                       {"continues", e.continues}});
  nlohmann::json defines = nlohmann::json::object();
  for (const auto& [name, d] : r.defines) defines[name] = {d.address, d.size, d.function};
  nlohmann::json j = {{"sequence", r.sequence}, {"patch_id", r.patch_id}, {"base_build_id", r.base_build_id},
                      {"result_build_id", r.result_build_id}, {"applied_at", r.applied_at},
                      {"region", {r.region_start, r.region_end}}, {"text", {r.text_start, r.text_end}},
                      {"entries", entries}, {"defines", defines}, {"objects_transformed", r.objects_transformed}};
  if (r.data.recorded) {
    nlohmann::json storage = nlohmann::json::array();
    for (const auto& g : r.data.storage) storage.push_back({g.identity, g.from, g.to, g.writable});
    j["data"] = {{"transformed", r.data.transformed}, {"moved", r.data.moved}, {"references", r.data.references},
                 {"storage", storage}, {"user_transformers", r.data.user_transformers},
                 {"irreversible", r.data.irreversible},
                 {"inverse", r.data.inverse.empty() ? nlohmann::json() : nlohmann::json::parse(r.data.inverse)}};
  }
  if (!r.library.empty()) j["library"] = {r.library, r.library_name};
  if (r.has_root) {
    nlohmann::json base = nlohmann::json::object();
    for (const auto& [name, s] : r.base_symbols) base[name] = {s.address, s.size, s.function};
    j["root"] = {{"bias", r.bias}, {"base_symbols", base}, {"base_imports", r.base_imports}};
  }
  const std::string text = j.dump();
  std::string out(kHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic, 8);
  const uint32_t version = kVersion, state = r.state;
  const uint64_t length = text.size();
  std::memcpy(out.data() + 8, &version, 4);
  std::memcpy(out.data() + kStateOffset, &state, 4);
  std::memcpy(out.data() + 16, &length, 8);
  return out + text;
}

Result<uint64_t> json_length(std::span<const uint8_t> header, uint64_t address) {
  if (header.size() < kHeaderBytes || std::memcmp(header.data(), kMagic, 8) != 0)
    return make_error("graft region at {:#x} has no registry header", address);
  uint64_t length = 0;
  std::memcpy(&length, header.data() + 16, 8);
  if (length > (64u << 20)) return make_error("graft region at {:#x}: corrupt registry header", address);
  return length;
}

Result<Record> decode(std::span<const uint8_t> bytes, uint64_t address) {
  GRAFT_ASSIGN(const uint64_t length, json_length(bytes, address));
  if (bytes.size() < kHeaderBytes + length) return make_error("graft region at {:#x}: corrupt registry header", address);
  const auto text = bytes.subspan(kHeaderBytes, length);
  uint32_t state = 0;
  std::memcpy(&state, bytes.data() + kStateOffset, 4);
  Record r;
  r.state = static_cast<State>(state);
  try {
    auto j = nlohmann::json::parse(text.begin(), text.end());
    r.sequence = j.at("sequence").get<int>();
    r.patch_id = j.at("patch_id").get<std::string>();
    r.base_build_id = j.at("base_build_id").get<std::string>();
    r.result_build_id = j.at("result_build_id").get<std::string>();
    r.applied_at = j.at("applied_at").get<std::string>();
    r.region_start = j.at("region").at(0).get<uint64_t>();
    r.region_end = j.at("region").at(1).get<uint64_t>();
    r.text_start = j.at("text").at(0).get<uint64_t>();
    r.text_end = j.at("text").at(1).get<uint64_t>();
    for (const auto& e : j.at("entries"))
      r.entries.push_back({e.at("identity").get<std::string>(), e.at("address").get<uint64_t>(),
                           e.at("old").get<std::string>(), e.at("new").get<std::string>(),
                           e.value("continues", std::vector<std::pair<uint64_t, uint64_t>>{})});
    for (const auto& [name, d] : j.at("defines").items())
      r.defines[name] = {d.at(0).get<uint64_t>(), d.at(1).get<uint64_t>(), d.at(2).get<bool>()};
    r.objects_transformed = j.value("objects_transformed", size_t{0});
    if (j.contains("library")) {
      r.library = j.at("library").at(0).get<std::string>();
      r.library_name = j.at("library").at(1).get<std::string>();
    }
    if (j.contains("data")) {
      const auto& d = j.at("data");
      r.data.recorded = true;
      r.data.transformed = d.at("transformed").get<std::map<std::string, size_t>>();
      r.data.moved = d.at("moved").get<size_t>();
      r.data.references = d.at("references").get<size_t>();
      for (const auto& g : d.at("storage"))
        r.data.storage.push_back({g.at(0).get<std::string>(), g.at(1).get<uint64_t>(), g.at(2).get<uint64_t>(),
                                  g.at(3).get<bool>()});
      r.data.user_transformers = d.at("user_transformers").get<std::vector<std::string>>();
      r.data.irreversible = d.at("irreversible").get<std::string>();
      if (!d.at("inverse").is_null()) r.data.inverse = d.at("inverse").dump();
    }
    if (j.contains("root")) {
      const auto& root = j.at("root");
      r.has_root = true;
      r.bias = root.at("bias").get<uint64_t>();
      for (const auto& [name, s] : root.at("base_symbols").items())
        r.base_symbols[name] = {s.at(0).get<uint64_t>(), s.at(1).get<uint64_t>(), s.at(2).get<bool>()};
      r.base_imports = root.at("base_imports").get<std::map<std::string, uint64_t>>();
    }
  } catch (const std::exception& e) {
    return make_error("graft region at {:#x}: corrupt registry ({})", address, e.what());
  }
  return r;
}

namespace {

Result<Record> decode(pid_t pid, uint64_t address) {
  GRAFT_ASSIGN(auto bytes, read_process_memory(pid, RemoteAddress(address), kHeaderBytes));
  GRAFT_ASSIGN(const uint64_t length, json_length(bytes, address));
  GRAFT_ASSIGN(auto text, read_process_memory(pid, RemoteAddress(address + kHeaderBytes), length));
  bytes.insert(bytes.end(), text.begin(), text.end());
  return registry::decode(std::span<const uint8_t>(bytes), address);
}

}  // namespace

Result<std::vector<Record>> read_all(pid_t pid) {
  GRAFT_ASSIGN(auto maps, read_maps(pid));
  std::vector<Record> records;
  for (const auto& m : maps) {
    if (!m.path.starts_with("/memfd:graft:") || m.offset != 0) continue;
    GRAFT_ASSIGN(Record r, decode(pid, m.start));
    if (r.state == Applied) records.push_back(std::move(r));
  }
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.sequence < b.sequence; });
  return records;
}

Result<std::vector<Leftover>> leftovers(pid_t pid) {
  GRAFT_ASSIGN(auto maps, read_maps(pid));
  std::vector<Leftover> out;
  for (const auto& m : maps) {
    if (!m.path.starts_with("/memfd:graft:")) continue;
    if (m.offset != 0) {  // a later segment of the region before it
      if (!out.empty() && out.back().name == m.path) out.back().end = std::max(out.back().end, m.end);
      continue;
    }
    auto r = decode(pid, m.start);
    std::string why;
    if (!r) why = "its registry record cannot be read";
    else if (r->state == Staged) why = "an apply that did not commit";
    else if (r->state == Reverting) why = "a revert that committed but did not unmap it";
    else if (r->state != Applied) why = fmt::format("its registry record is in state {}", static_cast<uint32_t>(r->state));
    if (why.empty()) continue;
    out.push_back({m.start, m.end, m.path, why, r ? std::optional(std::move(*r)) : std::nullopt});
  }
  return out;
}

std::string hex(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::vector<uint8_t> unhex(const std::string& text) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace graft::registry
