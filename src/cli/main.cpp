// graft: the command-line front end. Every subcommand is a thin layer over a
// library; errors come back as one line on stderr and a non-zero exit.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apply/apply.h"
#include "apply/recover.h"
#include "apply/registry.h"
#include "common/clock.h"
#include "crypto/trust.h"
#include "diff/diff.h"
#include "patch/patch.h"
#include "target/trap_handler.h"

namespace {

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

// One line on stderr; with --json, the same as an object on stdout for
// scripts, with the threads that blocked an update if that was the reason.
int fail(const graft::Error& error, bool json = false, const graft::Refusal& refusal = {}) {
  std::fprintf(stderr, "graft: error: %s\n", error.message.c_str());
  if (!json) return 1;
  nlohmann::json out = {{"ok", false}, {"error", error.message}};
  if (!refusal.blocking.empty()) {
    nlohmann::json blocking = nlohmann::json::array();
    for (const auto& b : refusal.blocking) {
      nlohmann::json frames = nlohmann::json::array();
      for (const auto& f : b.frames)
        frames.push_back({{"function", f.function}, {"where", f.where}, {"executing", f.executing}});
      nlohmann::json thread = {{"tid", b.tid}, {"name", b.thread_name}, {"frames", frames}};
      if (!b.problem.empty()) thread["problem"] = b.problem;
      blocking.push_back(thread);
    }
    out["blocking"] = blocking;
    out["hint"] = refusal.hint;
    out["attempts"] = refusal.attempts;
    out["arrivals"] = refusal.arrivals;
    out["pause_us"] = refusal.pause_us;
  }
  print_json(out);
  return 1;
}

int run_diff(const graft::DiffRequest& request, const std::string& output, bool explain, const std::string& header,
             const std::string& signing_key) {
  // The key is read first: a bad one is refused before minutes of work.
  std::optional<graft::crypto::SecretKey> key;
  if (!signing_key.empty()) {
    auto loaded = graft::crypto::load_secret_key(signing_key);
    if (!loaded) return fail(loaded.error());
    key = *loaded;
  }
  if (!header.empty()) {
    auto text = graft::transformer_header(request);
    if (!text) return fail(text.error());
    std::FILE* out = std::fopen(header.c_str(), "w");
    if (!out || std::fwrite(text->data(), 1, text->size(), out) != text->size() || std::fclose(out) != 0)
      return fail(graft::errno_error("cannot write " + header, errno));
    std::fprintf(stderr, "graft: wrote %s: the old layouts to write transformers against\n", header.c_str());
    if (output.empty() && !explain) return 0;
  }
  auto patch = graft::generate_patch(request);
  if (!patch) return fail(patch.error());
  if (explain) std::cout << graft::explain_patch(*patch);
  if (!output.empty()) {
    if (auto written = graft::write_patch(*patch, output, key ? &*key : nullptr); !written) return fail(written.error());
    std::fprintf(stderr, "graft: wrote %s: %zu functions, patch %s%s\n", output.c_str(), patch->manifest.functions.size(),
                 patch->manifest.patch_id.c_str(),
                 key ? (", signed by " + graft::crypto::key_fingerprint(graft::crypto::public_key_of(*key))).c_str() : "");
  }
  return 0;
}

// What graft apply runs in the target before the commit, in its order.
nlohmann::json update_code_json(const graft::UpdateCode& u) {
  nlohmann::json inits = nlohmann::json::array();
  for (const auto& i : u.inits) inits.push_back({{"global", i.global}, {"function", i.function}});
  return {{"inits", inits}, {"reruns", u.reruns}, {"on_update", u.on_update}, {"at_commit", u.at_commit}};
}

std::string signer(const graft::Patch& patch) {
  return patch.signer ? graft::crypto::key_fingerprint(*patch.signer) : "";
}

int run_keygen(const std::string& out) {
  std::string dir = out;
  if (dir.empty()) {
    const char* config = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    if (config && *config) dir = std::string(config) + "/graft";
    else if (home && *home) dir = std::string(home) + "/.config/graft";
    else return fail(graft::make_error("neither HOME nor XDG_CONFIG_HOME is set: give --out DIR"));
  }
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const char* user = std::getenv("USER");
  auto files = graft::crypto::generate_key_pair(dir, fmt::format("{}@{} {}", user ? user : "graft", host,
                                                                 graft::utc_timestamp()));
  if (!files) return fail(files.error());
  std::cout << fmt::format("wrote {} (the secret key: keep it private) and {} ({})\n"
                           "sign patches with: graft diff OLD NEW -o fix.graft --sign {}\n"
                           "trust them where they are applied: copy {} into {} (owned by root, mode 644)\n",
                           files->secret.string(), files->public_key.string(), graft::crypto::key_fingerprint(files->key),
                           files->secret.string(), files->public_key.string(), graft::crypto::kDefaultTrustedKeys);
  return 0;
}

int run_info(const std::string& file, bool json) {
  auto patch = graft::read_patch(file);
  if (!patch) return fail(patch.error());
  const auto& m = patch->manifest;
  if (json) {
    nlohmann::json functions = nlohmann::json::array();
    for (const auto& f : m.functions) functions.push_back({{"identity", f.identity}, {"replaces", f.replaces}, {"reason", f.reason}});
    print_json({{"patch_id", m.patch_id}, {"format_version", m.format_version},
                {"digest", graft::crypto::to_hex(patch->digest)}, {"signed_by", signer(*patch)}, {"base_build_id", m.base_build_id},
                {"result_build_id", m.result_build_id}, {"created", m.created}, {"functions", functions},
                {"added_data", m.added_data}, {"removed_functions", m.removed_functions}, {"pieces", patch->pieces.size()},
                {"update_code", update_code_json(m.update_code)}});
    return 0;
  }
  uint64_t bytes = 0;
  for (const auto& p : patch->pieces) bytes += p.size;
  std::cout << fmt::format("patch      {}\nformat     {}\ndigest     blake2b-256:{}\nsigned by  {}\n"
                           "base       {}  ({})\nresult     {}  ({})\ncreated    {}\n"
                           "contents   {} pieces, {} bytes, {} symbols\n",
                           m.patch_id, m.format_version, graft::crypto::to_hex(patch->digest),
                           patch->signer ? signer(*patch) : "(unsigned)", m.base_build_id, m.base_binary,
                           m.result_build_id, m.result_binary, m.created, patch->pieces.size(), bytes,
                           patch->symbols.size());
  std::cout << graft::explain_patch(*patch).substr(graft::explain_patch(*patch).find('\n') + 1);
  return 0;
}

struct SignatureOptions {
  bool require = false;
  std::string policy_file, trusted_keys;
};

int run_apply(int pid, const std::string& file, int timeout_ms, bool json, const std::string& checkpoints,
              int transformer_timeout_ms, int update_code_timeout_ms, bool transfer_frames, int max_hold_ms,
              const SignatureOptions& signature) {
  auto patch = graft::read_patch(file);
  if (!patch) return fail(patch.error(), json);
  auto policy = graft::crypto::load_signature_policy(signature.policy_file, signature.trusted_keys, signature.require);
  if (!policy) return fail(policy.error(), json);
  if (auto allowed = graft::crypto::check_signature_policy(*policy, patch->signer, file); !allowed)
    return fail(allowed.error(), json);
  graft::ApplyOptions options;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  options.transformer_limit = std::chrono::milliseconds(transformer_timeout_ms);
  options.update_code_limit = std::chrono::milliseconds(update_code_timeout_ms);
  options.max_hold = std::chrono::milliseconds(max_hold_ms);
  options.dynamic_checkpoints = checkpoints == "dynamic";
  options.transfer_frames = transfer_frames;
  graft::Refusal refusal;
  auto report = graft::apply_patch(pid, *patch, options, &refusal);
  if (!report) return fail(report.error(), json, refusal);
  if (json) {
    print_json({{"ok", true}, {"patch_id", report->patch_id}, {"sequence", report->sequence}, {"pid", pid},
                {"threads", report->threads}, {"functions", report->functions}, {"attempts", report->attempts},
                {"pause_us", report->pause_us}, {"prepare_us", report->prepare_us},
                {"hold_us", report->hold_us}, {"arrivals", report->arrivals},
                {"total_ms", report->total_ms}, {"region", fmt::format("{:#x}", report->region)},
                {"types_changed", report->types_changed}, {"objects", report->objects},
                {"objects_moved", report->objects_moved}, {"storage", fmt::format("{:#x}", report->storage)},
                {"storage_bytes", report->storage_bytes}, {"migrate_us", report->migrate_us},
                {"global_references", report->global_references}, {"searched_bytes", report->searched_bytes},
                {"epoll_words", report->epoll_words},
                {"frames_continued", report->frames_continued}, {"frames_transferred", report->frames_transferred},
                {"frames_moving", report->frames_moving},
                {"user_transformed", report->user_transformed},
                {"user_batches", report->user_batches}, {"update_calls", report->update_calls},
                {"update_thread", report->update_thread}, {"update_thread_idle", report->update_thread_idle},
                {"update_us", report->update_us}, {"at_commit_us", report->at_commit_us},
                {"notes", report->notes}});
  } else {
    std::cout << fmt::format("applied patch {} to process {} as #{}: {} functions, {} threads, paused {} us, {:.2f} ms in all\n",
                             report->patch_id, pid, report->sequence, report->functions, report->threads,
                             report->pause_us, report->total_ms);
    if (report->types_changed || report->objects)
      std::cout << fmt::format("data: {} types changed, {} live objects transformed in {} us (inside the pause){}\n",
                               report->types_changed, report->objects, report->migrate_us,
                               report->user_transformed ? fmt::format(", {} of them by your transformers", report->user_transformed)
                                                        : std::string());
    if (report->update_calls)
      std::cout << fmt::format("update-time code: {} function{} run in thread {}{} in {} us, the other threads running\n",
                               report->update_calls, report->update_calls == 1 ? "" : "s", report->update_thread,
                               report->update_thread_idle ? " (idle in a system call)" : "", report->update_us);
    if (report->at_commit_us)
      std::cout << fmt::format("commit-time code: run in {} us inside the pause\n", report->at_commit_us);
    if (report->frames_continued)
      std::cout << fmt::format("{} frames waiting for a call continue in the new code{}\n", report->frames_continued,
                               report->frames_moving
                                   ? fmt::format(" ({} of them move into the new body of their loop when the call "
                                                 "returns)", report->frames_moving)
                                   : "");
    if (report->frames_transferred)
      std::cout << fmt::format("{} threads moved into the new body of their loop\n", report->frames_transferred);
    if (report->searched_bytes)
      std::cout << fmt::format("data: {} pointers into globals given new storage now point there ({} bytes searched)\n",
                               report->global_references, report->searched_bytes);
    if (report->objects_moved)
      std::cout << fmt::format("data: {} objects outgrew their allocation and moved to {} bytes of new storage at {:#x}\n",
                               report->objects_moved, report->storage_bytes, report->storage);
    if (report->epoll_words)
      std::cout << fmt::format("data: {} epoll data word{} the kernel keeps set to where {} object{} went\n",
                               report->epoll_words, report->epoll_words == 1 ? "" : "s",
                               report->epoll_words == 1 ? "its" : "their", report->epoll_words == 1 ? "" : "s");
    for (const auto& note : report->notes) std::cout << "note: " << note << "\n";
  }
  return 0;
}

int run_status(int pid, bool json) {
  auto applied = graft::list_applied(pid);
  if (!applied) return fail(applied.error());
  auto leftovers = graft::registry::leftovers(pid);
  if (!leftovers) return fail(leftovers.error());
  auto maps = graft::read_maps(pid);
  if (!maps) return fail(maps.error());
  std::vector<uint64_t> handlers;  // graft's SIGTRAP handler, left by a graft that died
  for (const auto& m : *maps)
    if (graft::is_trap_handler(pid, m)) handlers.push_back(m.start);
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& a : *applied)
      list.push_back({{"sequence", a.sequence}, {"patch_id", a.patch_id}, {"base_build_id", a.base_build_id},
                      {"result_build_id", a.result_build_id}, {"applied_at", a.applied_at}, {"functions", a.functions},
                      {"region", {fmt::format("{:#x}", a.region_start), fmt::format("{:#x}", a.region_end)}},
                      {"library", a.library.empty() ? nlohmann::json() : nlohmann::json(a.library)},
                      {"lost", a.lost.empty() ? nlohmann::json() : nlohmann::json(a.lost)}});
    nlohmann::json left = nlohmann::json::array();
    for (const auto& l : *leftovers)
      left.push_back({{"name", l.name}, {"why", l.why},
                      {"region", {fmt::format("{:#x}", l.start), fmt::format("{:#x}", l.end)}}});
    nlohmann::json handler_pages = nlohmann::json::array();
    for (uint64_t h : handlers) handler_pages.push_back(fmt::format("{:#x}", h));
    print_json({{"pid", pid}, {"patches", list}, {"unrecorded_regions", left}, {"trap_handlers_left", handler_pages}});
    return 0;
  }
  if (applied->empty())
    std::cout << fmt::format("process {}: no graft patches applied\n", pid);
  else
    std::cout << fmt::format("process {}: {} patch{} applied (oldest first)\n", pid, applied->size(),
                             applied->size() == 1 ? "" : "es");
  for (const auto& a : *applied) {
    std::cout << fmt::format("  #{}  {}  {}  {}{} -> {}  {} functions\n", a.sequence, a.patch_id, a.applied_at,
                             a.library.empty() ? "" : a.library + " ", a.base_build_id.substr(0, 12),
                             a.result_build_id.substr(0, 12), a.functions.size());
    if (!a.lost.empty()) std::cout << fmt::format("      not in effect: {}\n", a.lost);
  }
  for (const auto& l : *leftovers)
    std::cout << fmt::format("  unrecorded region {:#x}-{:#x} ({}), left by {}: graft recover {} unmaps it\n", l.start,
                             l.end, l.name, l.why, pid);
  for (uint64_t h : handlers)
    std::cout << fmt::format("  graft's SIGTRAP handler left at {:#x}: graft recover {} takes it out\n", h, pid);
  return 0;
}

int run_recover(int pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return fail(graft::make_error("no process with PID {}", pid));
  auto report = graft::recover(pid, nullptr);
  if (!report) return fail(report.error());
  if (report->done.empty()) std::cout << fmt::format("process {}: nothing of graft's to clean up\n", pid);
  for (const auto& line : report->done) std::cout << fmt::format("process {}: {}\n", pid, line);
  return 0;
}

int run_revert(int pid, int timeout_ms, bool json, const std::string& checkpoints, int max_hold_ms) {
  graft::ApplyOptions options;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  options.max_hold = std::chrono::milliseconds(max_hold_ms);
  options.dynamic_checkpoints = checkpoints == "dynamic";
  graft::Refusal refusal;
  auto report = graft::revert_latest(pid, options, &refusal);
  if (!report) return fail(report.error(), json, refusal);
  if (json)
    print_json({{"ok", true}, {"patch_id", report->patch_id}, {"sequence", report->sequence}, {"threads", report->threads},
                {"pause_us", report->pause_us}, {"hold_us", report->hold_us}, {"arrivals", report->arrivals},
                {"attempts", report->attempts}, {"total_ms", report->total_ms},
                {"frames_continued", report->frames_continued}, {"objects", report->objects},
                {"objects_moved", report->objects_moved}, {"epoll_words", report->epoll_words}});
  else
    std::cout << fmt::format("reverted patch #{} {} in process {}: paused {} us, {:.2f} ms in all\n", report->sequence,
                             report->patch_id, pid, report->pause_us, report->total_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A commit's memory is large and short-lived (a copy of the target's heap,
  // the transformed objects, the writes): what is freed is kept for reuse, not
  // returned to the kernel, because on a VM first touching a page costs far
  // more than copying it (docs/BENCHMARKS.md, data transformation).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  CLI::App app{
      "graft: update running C and C++ programs to new code without stopping them.\n\n"
      "  CC=graft-cc make                        build v1 (and later v2) with the graft compiler driver\n"
      "  graft diff v1/server v2/server -o fix.graft --explain\n"
      "  graft apply PID fix.graft               live, all threads, all or nothing\n"
      "  graft status PID    graft revert PID    graft info fix.graft    graft recover PID\n"
      "  graft keygen        then diff --sign KEY, and apply --require-signature (or /etc/graft/apply.conf)\n",
      "graft"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "graft 0.1.0");

  std::string old_binary, new_binary, output, file, checkpoints = "dynamic", transform_file, transform_header;
  std::string questions_file;
  std::string signing_key, key_dir;
  SignatureOptions signature;
  std::vector<std::string> transform_includes, static_values, stuck_threads_allowed;
  bool explain = false, json = false, transfer_frames = true;
  int pid = 0, timeout_ms = 5000, transformer_timeout_ms = 2000, update_code_timeout_ms = 2000, max_hold_ms = 64;

  auto* diff = app.add_subcommand("diff", "Generate a patch from two binaries built with graft-cc");
  diff->add_option("OLD", old_binary, "The running version (its objects are found in the graft store by build-id)")->required()->check(CLI::ExistingFile);
  diff->add_option("NEW", new_binary, "The new version")->required()->check(CLI::ExistingFile);
  diff->add_option("-o,--output", output, "Write the patch here (e.g. fix.graft)");
  diff->add_flag("--explain", explain,
                 "Print every function in the patch and why it is there, and for each changed struct what happens to "
                 "each field, whose transformer runs (the generated default or yours) and the signature to write");
  diff->add_option("--transform", transform_file,
                   "FILE.c: transformers you write in C, compiled into the patch with clang 14 and run in the target "
                   "at the commit after the generated defaults. For a changed struct node: "
                   "GRAFT_TRANSFORM(node, from, to) { to->weight = from->count * 10; } with <graft/graft.h>, the "
                   "program's headers and the --transform-header file included (also for the struct of a global "
                   "given new storage; a renamed struct goes by its new name; a member no default converts, an "
                   "array that becomes a pointer, is left zero for yours to set). A transformer must not allocate, "
                   "lock or block: the other threads are stopped; a fault or apply's --transformer-timeout abandons "
                   "the update and nothing changes. The file may also declare, one line each, what the types do not "
                   "say: GRAFT_POINTS_TO(slot, value, item); (member value of struct slot, a void * or integer, holds "
                   "NULL or the start of a struct item: followed, transformed and rewritten like a typed pointer) and "
                   "GRAFT_UNION_MEMBER(msg, body, kind, MSG_ITEM, item); (while msg.kind == MSG_ITEM, body.item is "
                   "the union's live member); a file of directives alone is fine. Update-time code, run in the target "
                   "after the patch is mapped and before the commit, in a borrowed idle thread while the others run "
                   "(it may allocate and call the program's functions): GRAFT_INIT(custom_hdrs, char *, value) "
                   "{ *value = strdup(\"\"); return 0; } gives a global the new version adds its value, "
                   "GRAFT_RERUN(setup_table); calls the new version's function (no parameters) once, "
                   "GRAFT_ON_UPDATE() { ...; return 0; } runs once; a nonzero return, a fault or apply's "
                   "--update-code-timeout abandons the update")
      ->check(CLI::ExistingFile)->type_name("FILE.c");
  diff->add_option("--questions", questions_file,
                   "FILE.c: when graft diff must ask what untyped members or globals hold (graft-cc's records "
                   "cannot tell), it writes every question there as a --transform file to edit: each member with "
                   "what the records say, and the two lines that would settle it, commented out")
      ->type_name("FILE.c");
  diff->add_option("-I,--transform-include", transform_includes,
                   "A directory to search for the headers FILE.c includes (repeatable); the new binary's source "
                   "root is searched after these")
      ->allow_extra_args(false)->check(CLI::ExistingDirectory)->type_name("DIR");
  diff->add_option("--transform-header", transform_header,
                   "Write OUT.h: the old layout of every changed struct as struct graft_old_<tag>, byte for byte, "
                   "with the signature of each transformer you may write")
      ->type_name("OUT.h");
  diff->add_option("--accept-static-value", static_values,
                   "NAME: a new global (or GLOBAL.MEMBER, a new member of a struct global) that the new version sets "
                   "at start-up (main before its loop, a constructor, code only they call, code behind a once-flag) "
                   "keeps its static value after the update, and you say that value is right (repeatable). Without "
                   "it, graft diff refuses such state: start-up ran long ago in the old version and will not run "
                   "again. The other way out gives it a value at update time: GRAFT_INIT or GRAFT_RERUN in a "
                   "--transform file")
      ->type_name("NAME");
  diff->add_option("--allow-stuck-threads", stuck_threads_allowed,
                   "FUNCTION: write the patch although FUNCTION, which never returns while the program serves (main, "
                   "a thread's loop), is replaced and its threads have no place to move into the new code (not "
                   "continuable, no transfer point: --explain says why at each call), or is left as it is but its "
                   "frame may point to changed data where DWARF does not say, at every call it serves at. Without it "
                   "graft diff refuses such a patch: graft apply would wait for those threads until its timeout. For a "
                   "process where no thread runs FUNCTION (repeatable)")
      ->type_name("FUNCTION");
  diff->add_option("--sign", signing_key,
                   "KEY: sign the patch with this secret key (graft-signing.key, made by graft keygen). The "
                   "signature covers the BLAKE2b digest of every byte of the patch file; graft apply checks it "
                   "whenever it is there, and with --require-signature (or require-signature = yes in "
                   "/etc/graft/apply.conf) accepts only patches signed by a key in the trusted-keys directory")
      ->check(CLI::ExistingFile)->type_name("KEY");
  diff->callback([&] {
    if (output.empty() && !explain && transform_header.empty())
      throw CLI::ValidationError("diff", "give -o PATCH to write the patch, --explain to only report, or "
                                         "--transform-header OUT.h");
    if (!transform_includes.empty() && transform_file.empty())
      throw CLI::ValidationError("diff", "--transform-include is for --transform FILE.c");
  });

  auto* keygen = app.add_subcommand(
      "keygen",
      "Make an Ed25519 key pair for signing patches: graft-signing.key (secret, mode 600: give it to graft diff "
      "--sign) and graft-signing.pub (copy it into the trusted-keys directory, /etc/graft/trusted-keys by default, "
      "of each machine that applies your patches). An existing key is never replaced");
  keygen->add_option("--out", key_dir, "Write the two files here (default: $XDG_CONFIG_HOME/graft, else ~/.config/graft)")
      ->type_name("DIR");

  auto* info = app.add_subcommand("info", "Validate a patch file (its digest and signature) and describe it");
  info->add_option("PATCH", file, "The .graft file")->required();
  info->add_flag("--json", json, "Machine-readable output");

  auto* apply = app.add_subcommand("apply", "Apply a patch to a running process");
  apply->add_option("PID", pid, "The process to update")->required()->check(CLI::PositiveNumber);
  apply->add_option("PATCH", file, "The .graft file, made by graft diff against the version the process runs")->required();
  apply->add_option("--timeout", timeout_ms, "Milliseconds to wait for a moment when no thread runs a replaced function")
      ->default_val(5000)->check(CLI::Range(1, 3600000));
  apply->add_option("--checkpoints", checkpoints,
                    "dynamic: plant breakpoints where blocked threads leave the replaced functions and at their "
                    "entries; poll: only stop and check again with backoff")
      ->check(CLI::IsMember({"dynamic", "poll"}))->default_val("dynamic");
  apply->add_option("--transformer-timeout", transformer_timeout_ms,
                    "Milliseconds the patch's user transformers may run per batch of objects before the update is "
                    "abandoned (a loop, or a lock a stopped thread holds)")
      ->default_val(2000)->check(CLI::Range(1, 600000))->type_name("MS");
  apply->add_option("--update-code-timeout", update_code_timeout_ms,
                    "Milliseconds each function of the patch's update-time code (GRAFT_INIT, GRAFT_RERUN, "
                    "GRAFT_ON_UPDATE of graft diff --transform) may run, in a borrowed thread before the commit, "
                    "before the update is abandoned with nothing changed")
      ->default_val(2000)->check(CLI::Range(1, 600000))->type_name("MS");
  apply->add_flag("--transfer-frames,!--no-transfer-frames", transfer_frames,
                  "Move the threads of a changed never-returning loop into its new body at its transfer points "
                  "(graft diff --explain lists them): a thread just back from the waiting call there moves at the "
                  "commit, one blocked inside it (idle) when the call returns. On by default; "
                  "--no-transfer-frames makes such threads keep the update waiting instead");
  apply->add_option("--max-hold", max_hold_ms,
                    "Longest a thread may be held at an entry of replaced code (or a transfer point) while the others come "
                    "to theirs, in milliseconds: the hold starts at 2 ms and doubles each time the threads do not meet "
                    "(a busy thread pool), up to this; a thread waiting on a lock lets the held ones go at once. Lower "
                    "it to bound the latency a held thread adds to its requests")
      ->default_val(64)->check(CLI::Range(1, 10000))->type_name("MS");
  apply->add_flag("--require-signature", signature.require,
                  "Refuse a patch unless it is signed (graft diff --sign) by a key in the trusted-keys directory. An "
                  "administrator requires this for every apply with the line \"require-signature = yes\" in the "
                  "apply policy, /etc/graft/apply.conf. The directory, its .pub files and the policy file must belong "
                  "to root or to you and be writable by no one else, or they are refused (as ssh refuses a loose "
                  "authorized_keys)");
  apply->add_option("--trusted-keys", signature.trusted_keys,
                    "The trusted-keys directory: each *.pub file in it (graft keygen's graft-signing.pub) is a key "
                    "whose signatures are accepted. Default: $GRAFT_TRUSTED_KEYS, else the policy's \"trusted-keys = "
                    "DIR\", else /etc/graft/trusted-keys")
      ->type_name("DIR");
  apply->add_option("--policy", signature.policy_file,
                    "The apply policy file instead of $GRAFT_APPLY_POLICY or /etc/graft/apply.conf (lines "
                    "\"require-signature = yes|no\" and \"trusted-keys = DIR\"; # comments)")
      ->type_name("FILE");
  apply->add_flag("--json", json, "Print patch_id, threads, functions, pause_us, total_ms as JSON");

  auto* status = app.add_subcommand("status", "List the patches applied to a process, oldest first");
  status->add_option("PID", pid, "The process")->required()->check(CLI::PositiveNumber);
  status->add_flag("--json", json, "Machine-readable output");

  auto* revert = app.add_subcommand(
      "revert", "Undo the latest patch applied to a process: its code, and its data back to the old layouts unless the patch lost values (a field removed or narrowed, a user transformer)");
  revert->add_option("PID", pid, "The process")->required()->check(CLI::PositiveNumber);
  revert->add_option("--timeout", timeout_ms, "Milliseconds to wait for a moment when no thread runs the patch's code")
      ->default_val(5000)->check(CLI::Range(1, 3600000));
  revert->add_option("--max-hold", max_hold_ms, "Longest a thread may be held at an entry of replaced code (or a transfer point) while the others come "
                    "to theirs, in milliseconds: the hold starts at 2 ms and doubles each time the threads do not meet "
                    "(a busy thread pool), up to this; a thread waiting on a lock lets the held ones go at once. Lower "
                    "it to bound the latency a held thread adds to its requests")
      ->default_val(64)->check(CLI::Range(1, 10000))->type_name("MS");
  revert->add_option("--checkpoints", checkpoints,
                     "dynamic: plant breakpoints where threads leave the patch's code; poll: only stop and check again")
      ->check(CLI::IsMember({"dynamic", "poll"}))->default_val("dynamic");
  revert->add_flag("--json", json, "Machine-readable output");

  auto* recover = app.add_subcommand(
      "recover", "Clean up what a graft killed in the middle of an apply or a revert left in a process (a region of "
                 "graft's that no applied patch names); the guardian of each update does it by itself");
  recover->add_option("PID", pid, "The process")->required()->check(CLI::PositiveNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      std::fprintf(stderr, "graft: error: %s (see graft %s--help)\n", e.what(),
                   app.get_subcommands().empty() ? "" : (app.get_subcommands()[0]->get_name() + " ").c_str());
      return 2;
    }
    return app.exit(e);
  }
  if (diff->parsed()) {
    graft::DiffRequest request{old_binary,    new_binary,           transform_file, {},
                               static_values, stuck_threads_allowed, questions_file};
    for (const auto& d : transform_includes) request.transform_includes.emplace_back(d);
    return run_diff(request, output, explain, transform_header, signing_key);
  }
  if (keygen->parsed()) return run_keygen(key_dir);
  if (info->parsed()) return run_info(file, json);
  if (apply->parsed()) return run_apply(pid, file, timeout_ms, json, checkpoints, transformer_timeout_ms, update_code_timeout_ms,
                                      transfer_frames, max_hold_ms, signature);
  if (status->parsed()) return run_status(pid, json);
  if (revert->parsed()) return run_revert(pid, timeout_ms, json, checkpoints, max_hold_ms);
  if (recover->parsed()) return run_recover(pid);
  return 2;
}
