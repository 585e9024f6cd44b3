// graft diff: from two builds to a patch.
#include <elf.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "common/member_facts_format.h"
#include "target/x86.h"
#include "diff/build.h"
#include "diff/compare.h"
#include "common/blocking_calls.h"
#include "diff/continuation.h"
#include "diff/frame_code.h"
#include "diff/startup.h"
#include "diff/transfer.h"
#include "common/clock.h"
#include "diff/diff.h"
#include "data/plan.h"
#include "elf/dwarf.h"
#include "patch/base_check.h"
#include "patch/relocation.h"
#include "elf/types.h"
#include "diff/transformers.h"

namespace graft {
namespace {

using diff::Build;
using diff::Comparator;
using diff::Definition;
using diff::SectionRef;
using diff::Target;
using diff::is_constant_data;


// graft diff --questions: what graft asks about untyped members and
// globals, as a --transform file that declares nothing until edited (each
// answer is commented out: keeping none, graft diff asks again).
Status write_questions(const std::filesystem::path& file, const DeclarationQuestions& questions) {
  std::string text =
      "// What graft diff asks: graft-cc's records do not tell what these untyped members and globals hold,\n"
      "// and a changed struct may be behind them: " + questions.hiding + ".\n"
      "// For each, uncomment ONE line: the struct it holds (NULL or the start of one; replace STRUCT with\n"
      "// its tag, or its typedef name if it has none), or that it never holds a changed struct. Each line is\n"
      "// a claim about the running program: check it against the code that stores there. Then pass this\n"
      "// file to graft diff --transform (it may also hold your transformers).\n"
      "#include <graft/graft.h>\n";
  if (!questions.settleable)
    text += "//\n// Some have no answer (\"no declaration can settle it\"): while they stand, this release cannot be\n"
            "// applied to a running process whatever the others say.\n";
  for (const auto& q : questions.asked) {
    if (q.directives.empty()) {
      text += "\n// " + q.subject + ": no declaration can settle it: " + q.why + "\n";
      continue;
    }
    text += "\n// " + q.subject + ": " + q.why + "\n";
    for (const auto& d : q.directives) text += "// " + d + "\n";
  }
  std::ofstream out(file);
  out << text;
  out.close();
  if (!out) return make_error("cannot write {}; nothing was written", file.string());
  return ok();
}

bool has_patchable_entry(const Build& build, const Definition& def) {
  const ElfSection& s = build.section(def.section);
  const ElfSymbol& sym = build.symbol(def.section.object, def.symbol);
  if (sym.value < x86::kEntryPad || sym.value + 2 > s.data.size()) return false;
  return x86::is_unpatched_entry(std::span(s.data).subspan(sym.value - x86::kEntryPad, x86::kEntryBytes));
}

PieceKind piece_kind(const ElfSection& s) {
  if (s.flags & SHF_EXECINSTR) return PieceKind::Text;
  if (s.type == SHT_NOBITS) return PieceKind::Bss;
  if (s.flags & SHF_WRITE) return PieceKind::Data;
  return PieceKind::ReadOnly;
}

class Generator {
 public:
  Generator(const Build& old_build, Build& new_build, const DiffRequest& request)
      : old_(old_build), new_(new_build), request_(request), compare_(old_, new_) {}

  Result<std::string> header() {
    GRAFT_TRY(plan_data());
    if (plan_.changes.empty()) return make_error("the two versions change no struct layout: there is nothing to transform");
    return old_types_header(plan_, old_.binary().path().string());
  }

  Result<Patch> run() {
    GRAFT_TRY(plan_data());
    GRAFT_TRY(collect_functions());
    if (!request_.transform_file.empty()) GRAFT_TRY(add_user_transformers());
    if (!plan_.empty()) {
      plan_way_back();
      patch_.data_plan = encode_data_plan(plan_);
    }
    for (const auto& id : retyped_) GRAFT_TRY(named(id));  // its new storage, even if no new code names it
    for (size_t i = 0; i < queue_.size(); ++i) GRAFT_TRY(link_piece(queue_[i]));
    GRAFT_TRY(check_startup_state());
    GRAFT_TRY(record_base_symbols());
    Manifest& m = patch_.manifest;
    m.base_build_id = old_.build_id();
    m.result_build_id = new_.build_id();
    m.base_binary = std::filesystem::absolute(old_.binary().path()).string();
    m.result_binary = std::filesystem::absolute(new_.binary().path()).string();
    m.created = utc_timestamp();
    m.base_pie = old_.binary().type() == ET_DYN;
    m.base_load_address = old_.binary().load_address();
    m.patch_id = patch_content_id(patch_);
    return std::move(patch_);
  }

 private:
  // Types and globals whose layout changed: the plan for their live data.
  Status plan_data() {
    GRAFT_ASSIGN(old_types_, read_type_table(old_.binary()));
    GRAFT_ASSIGN(new_types_, read_type_table(new_.binary()));
    const TypeTable& before = old_types_;
    const TypeTable& after = new_types_;
    const auto old_by_address = identities_by_address(old_, STT_OBJECT);
    const auto new_by_address = identities_by_address(new_, STT_OBJECT);
    auto identity_of = [&](const Variable& v, bool new_build) {
      return identity_at(new_build ? new_by_address : old_by_address, v.address);
    };
    const auto functions = identities_by_address(old_, STT_FUNC);
    auto function_at = [&](uint64_t address) { return identity_at(functions, address); };
    std::vector<DataDirective>& directives = directives_;
    if (!request_.transform_file.empty()) {
      GRAFT_ASSIGN(directives, diff::read_directives(request_.transform_file));
    }
    // What graft-cc recorded of the untyped members (none in an older build: checked at the commit then).
    old_facts_ = MemberFacts::read(old_.binary(), before.variants);
    new_facts_ = MemberFacts::read(new_.binary(), after.variants);
    DeclarationQuestions questions;
    auto planned = plan_data_changes(before, after, identity_of, function_at, directives,
                                     old_facts_ ? &*old_facts_ : nullptr, &questions);
    if (!planned) {
      if (request_.questions_file.empty() || questions.asked.empty()) return planned.error();
      GRAFT_TRY(write_questions(request_.questions_file, questions));
      return make_error("{}; every question is in {}{}", planned.error().message, request_.questions_file.string(),
                        questions.settleable ? ", to edit and pass as --transform" : "");
    }
    plan_ = std::move(*planned);
    for (const auto& id : plan_.retyped_globals()) retyped_.insert(id);
    for (const auto& h : plan_.frame_holders) holders_[h.identity] = h.live(DataPlan::FrameHolder::Places::Unknown);
    // A global whose size changed but whose type graft could not see (no DWARF for it).
    for (const auto& [id, def] : new_.definitions()) {
      const Definition* old_def = old_.find(id);
      if (def.function || !old_def || is_constant_data(new_.section(def.section)) || retyped_.count(id)) continue;
      const auto& a = old_.symbol(old_def->section.object, old_def->symbol);
      const auto& b = new_.symbol(def.section.object, def.symbol);
      if (a.size != b.size)
        return make_error("global {} changes size ({} -> {} bytes) but has no type in the debug information, so no "
                          "transformer can be made; nothing was written", id, a.size, b.size);
    }
    return ok();
  }

  // The user's transformers and update-time code: compiled, checked, and
  // put into the patch like added functions, with the loops that run them in
  // the target.
  Status add_user_transformers() {
    GRAFT_ASSIGN(auto compiled, diff::compile_transformers(request_.transform_file, request_.transform_includes, plan_,
                                                           old_, new_, new_types_));
    // Directives only: they are in the plan already.
    if (compiled.functions.empty() && compiled.update_code.empty()) return ok();
    new_.add_object(std::move(compiled.object), "graft-transform:" + request_.transform_file.filename().string());
    const std::string file = request_.transform_file.filename().string();
    GRAFT_TRY(add_update_code(std::move(compiled.update_code), file));
    if (compiled.functions.empty()) return ok();
    for (const auto& [type, function] : compiled.functions) {
      GRAFT_ASSIGN(uint32_t symbol, define(function));
      patch_.manifest.functions.push_back({function, "transformer for " + type + ", written by the user (" + file + ")",
                                           symbol, false, {}});
    }
    GRAFT_ASSIGN(uint32_t runner, define(diff::kTransformerRunner));
    patch_.manifest.functions.push_back({diff::kTransformerRunner, "runs the user's transformers in the target at the commit",
                                         runner, false, {}});
    plan_.user_transformers = std::move(compiled.functions);
    plan_.user_transformer_file = request_.transform_file.string();
    plan_.user_transformer_runner = diff::kTransformerRunner;
    return ok();
  }

  // GRAFT_INIT, GRAFT_RERUN and GRAFT_ON_UPDATE: their functions, the globals
  // the inits fill (defined by the patch even if no new code names them) and
  // the runner join the patch; apply runs them before the commit.
  Status add_update_code(UpdateCode code, const std::string& file) {
    if (code.empty()) return ok();
    for (const auto& i : code.inits) {
      GRAFT_TRY(named(i.global));
      GRAFT_ASSIGN(uint32_t symbol, define(i.function));
      patch_.manifest.functions.push_back({i.function, "initialises the new global " + i.global +
                                           " at update time, written by the user (" + file + ")", symbol, false, {}});
    }
    // A rerun calls the patch's version (replaced or added), else the running one (unchanged).
    for (const auto& id : code.reruns)
      if (!symbol_of_.count(id + "#defined") && !linked().first.count(id))
        return make_error("{}: GRAFT_RERUN({}): {} did not change, but the running binary's symbol table does not "
                          "name it (stripped?), so graft cannot find it to call it", file, id, id);
    if (!code.on_update.empty()) {
      GRAFT_ASSIGN(uint32_t symbol, define(code.on_update));
      patch_.manifest.functions.push_back({code.on_update, "runs at update time, written by the user (" + file + ")",
                                           symbol, false, {}});
    }
    if (!code.at_commit.empty()) {
      GRAFT_ASSIGN(uint32_t symbol, define(code.at_commit));
      patch_.manifest.functions.push_back({code.at_commit, "runs at the commit, every thread stopped, written by the "
                                           "user (" + file + ")", symbol, false, {}});
    }
    GRAFT_ASSIGN(uint32_t runner, define(code.runner));
    patch_.manifest.functions.push_back({code.runner, "runs the update-time code in the target before the commit",
                                         runner, false, {}});
    patch_.manifest.update_code = std::move(code);
    return ok();
  }

  // Identity of each named object of a build, by its link-time address in the binary.
  // The identities of a build's objects (STT_OBJECT) or functions (STT_FUNC) by address.
  static std::map<uint64_t, std::string> identities_by_address(const Build& build, int type) {
    std::map<uint64_t, std::string> out;
    for (const auto& [id, symbol] : build.linked_symbols())
      if (symbol->type == type) out.emplace(symbol->value, id);
    return out;
  }
  static std::string identity_at(const std::map<uint64_t, std::string>& identities, uint64_t address) {
    auto it = identities.find(address);
    return it == identities.end() ? std::string() : it->second;
  }

  // How a revert undoes the data changes (the same comparison with the
  // builds swapped), or why it cannot: once the user's transformers are known.
  void plan_way_back() {
    const auto old_by_address = identities_by_address(old_, STT_OBJECT);
    const auto new_by_address = identities_by_address(new_, STT_OBJECT);
    const auto functions = identities_by_address(new_, STT_FUNC);
    plan_inverse(
        plan_, old_types_, new_types_,
        [&](const Variable& v, bool new_build) { return identity_at(new_build ? new_by_address : old_by_address, v.address); },
        [&](uint64_t address) { return identity_at(functions, address); }, new_facts_ ? &*new_facts_ : nullptr,
        directives_);
  }

  // Whether a piece of the new build refers to a global that moves to new storage.
  bool refers_to_retyped(SectionRef ref, std::string* which) const {
    if (retyped_.empty()) return false;
    for (const auto& r : new_.relocations(ref)) {
      auto target = diff::resolve_target(new_, ref, r);
      if (target && target->kind == Target::Named && retyped_.count(target->name)) {
        *which = target->name;
        return true;
      }
    }
    return false;
  }

  Status collect_functions() {
    for (const auto& [id, def] : new_.definitions()) {
      if (!def.function) continue;
      const Definition* old_def = old_.find(id);
      if (!old_def) {
        GRAFT_ASSIGN(uint32_t symbol, define(id));
        patch_.manifest.functions.push_back({id, "added in the new version", symbol, false, {}});
        continue;
      }
      std::string reason, global;
      if (compare_.same_section(old_def->section, def.section, &reason)) {
        // Same code, but it must reach the global at its new storage.
        if (!refers_to_retyped(def.section, &global)) continue;
        reason = "it uses global " + global + ", whose type changed (new storage)";
      }
      if (!has_patchable_entry(old_, *old_def))
        return make_error("function {} changed, but the running binary has no patchable entry for it "
                          "(compile every file with graft-cc)", id);
      if (!has_patchable_entry(new_, def))
        return make_error("function {} in the new binary has no patchable entry (compile every file with graft-cc)", id);
      GRAFT_ASSIGN(uint32_t symbol, define(id));
      patch_.manifest.functions.push_back({id, reason, symbol, true, continuation(id, *old_def, def)});
    }
    // Unwind tables of patch code are not registered in the target yet: an
    // exception thrown through it would terminate the process. Refuse instead.
    for (const auto& f : patch_.manifest.functions) {
      const Definition* def = new_.find(f.identity);
      if (def && new_.objects()[def->section.object].exceptions)
        return make_error("{} is C++ code built with exceptions, and graft cannot register unwind tables for "
                          "patched code yet (an exception through it would terminate the process); build with "
                          "-fno-exceptions to patch it", f.identity);
    }
    explain_inlining();
    for (const auto& [id, def] : old_.definitions())
      if (def.function && !new_.find(id)) patch_.manifest.removed_functions.push_back(id);
    if (patch_.manifest.functions.empty())
      return make_error("the two binaries have the same code: there is nothing to patch");
    return ok();
  }

  // Whether a thread may stay inside a replaced function: where its frames
  // may return into the new code. A call over which a local that may point
  // to changed data is kept where DWARF does not say is not such a place
  // (see "Data changes as built"). One at a known place is a root of the
  // traversal, and the new code, equivalent, finds it at the same place;
  // one only in a register the call clobbers is gone by then.
  Continuation continuation(const std::string& id, const Definition& old_def, const Definition& new_def) {
    auto same_address = [&](const Target& a, const Target& b, uint32_t type) {
      if (a.kind != b.kind || a.name != b.name) return false;
      if (a.kind == Target::Anonymous) {
        // The patch has its own copy. A merged string or constant is only a
        // value (read-only, never code addresses): the old copy, with the same
        // contents, serves as well. A table (of code labels) does not.
        const bool merged = (old_.section(a.section).flags & SHF_MERGE) && (new_.section(b.section).flags & SHF_MERGE);
        return merged && compare_.same_target(a, b, type);
      }
      if (a.offset != b.offset) return false;
      if (a.kind == Target::External) return true;
      const Definition* def = new_.find(b.name);
      if (!def || !old_.find(a.name)) return false;
      if (def->function) return true;                  // both reach the canonical entry
      if (retyped_.count(b.name)) return false;        // new storage
      if (is_constant_data(new_.section(def->section))) return compare_.same_section(a.section, b.section);
      return true;                                     // state kept in place
    };
    std::vector<diff::CallVerdict> verdicts;
    Continuation c = diff::compare_for_continuation(old_, old_def, new_, new_def, same_address, frame_objects(id), &verdicts);
    auto held = holders_.find(id);
    if (c.continuable && held != holders_.end()) {
      const size_t calls = c.returns.size();
      // A return address is one past its call: live over the call means live at r - 1.
      auto holds = [&](uint64_t back) {
        return std::any_of(held->second.begin(), held->second.end(),
                           [&](const auto& live) { return live.first < back && back <= live.second + 1; });
      };
      std::erase_if(c.returns, [&](const auto& r) { return holds(r.first); });
      for (auto& v : verdicts)
        if (v.continues && holds(v.back)) {
          v.continues = false;
          v.why = "a local that may point to changed data is kept where DWARF does not say (graft could not find and "
                  "transform its object)";
        }
      if (c.returns.size() != calls) {
        const std::string why = fmt::format("{} of its {} calls that could continue hold a local that may point to "
                                            "changed data where DWARF does not say (graft could not find and "
                                            "transform its object)", calls - c.returns.size(), calls);
        c.reason = c.reason.empty() ? why : c.reason + "; " + why;
        if (c.returns.empty()) c.continuable = false;
      }
    }
    // Where a frame does not continue, its thread may still move into the
    // new body just back from a waiting call (main, continuable at its
    // start-up calls, but not at its service call: mosquitto's VERSION kept
    // in a register across its main loop). Sought only where it can matter.
    std::set<uint64_t> continuing;
    for (const auto& r : c.returns) continuing.insert(r.first);
    const bool stuck_wait = std::any_of(verdicts.begin(), verdicts.end(), [&](const diff::CallVerdict& v) {
      return !v.continues && !v.callee.empty() && (waits(v.callee) || v.callee == kUpdatePointCall);
    });
    if (!c.continuable || stuck_wait) transfers(id, old_def, new_def, c, continuing);
    explain_calls(id, verdicts, c);
    return c;
  }

  // The linked symbols of both builds, read once.
  const std::pair<std::map<std::string, const ElfSymbol*>, std::map<std::string, const ElfSymbol*>>& linked() {
    if (linked_.first.empty()) linked_ = {old_.linked_symbols(), new_.linked_symbols()};
    return linked_;
  }

  // The old frame's locals DWARF places in memory: the extent of an object
  // whose address the code takes.
  std::vector<diff::FrameObject> frame_objects(const std::string& id) {
    std::vector<diff::FrameObject> out;
    auto symbol = linked().first.find(id);
    if (symbol == linked().first.end()) return out;
    const FrameTypes* frame = old_types_.frame_at(symbol->second->value);
    if (!frame) return out;
    for (const auto& local : frame->locals) {
      const uint64_t size = local.type >= 0 ? old_types_.at(local.type).size : 0;
      if (!size) continue;
      auto add = [&](const LocalPlace& place) {
        if (place.kind == LocalPlace::Kind::AtCfaOffset || place.kind == LocalPlace::Kind::AtRegisterOffset)
          out.push_back({place, size});
      };
      add(local.scope_slot);
      for (const auto& range : local.live) add(range.place);
    }
    return out;
  }

  // For --explain: every call where a thread may wait, and every call where a
  // frame may not continue, with its source line and why.
  void explain_calls(const std::string& id, const std::vector<diff::CallVerdict>& verdicts, Continuation& c) {
    auto symbol = linked().second.find(id);
    const uint64_t entry = symbol == linked().second.end() ? 0 : symbol->second->value;
    const auto binary = new_.binary().path();
    auto line = [&](uint64_t offset) {
      const std::string where = entry ? source_line(binary, entry + offset) : "";
      return where.empty() ? fmt::format("+{:#x}", offset) : fmt::format("{} (+{:#x})", where, offset);
    };
    for (const auto& v : verdicts) {
      if (v.continues && !is_blocking_call(v.callee)) continue;
      const std::string call = fmt::format("the call to {} at {}", v.callee.empty() ? "an address" : v.callee, line(v.call));
      if (v.continues) c.calls.push_back(call + " continues");
      else c.calls.push_back(fmt::format("{} does not continue: {}{}", call, v.why,
                                         v.blocking ? "; blocked by " + line(*v.blocking) : ""));
      if (!v.continues) not_continuing_[id][v.back] = c.calls.back();
    }
  }

  // Whether a thread may wait for long inside a call to `callee` of the old
  // build: a waiting library call (blocking_calls.h), or a function of the
  // program that calls one, directly or not (a loop around `httpd_poll()`,
  // which waits in select()). Each function is decoded once; a cycle counts
  // as not waiting until shown otherwise.
  bool waits(const std::string& callee) {
    if (is_blocking_call(callee)) return true;
    if (auto known = waits_.find(callee); known != waits_.end()) return known->second;
    waits_[callee] = false;
    const Definition* d = old_.find(callee);
    if (!d || !d->function) return false;
    auto code = diff::read_code(old_, *d);
    if (!code) return false;
    for (const auto* names : {&code->callees, &code->tail_callees})
      for (const auto& next : *names)
        if (!next.empty() && next != callee && waits(next)) return waits_[callee] = true;
    return false;
  }

  // Where a thread may move from the old body into the new one (transfer.h).
  void transfers(const std::string& id, const Definition& old_def, const Definition& new_def, Continuation& c,
                 const std::set<uint64_t>& continuing) {
    auto a = linked().first.find(id);
    auto b = linked().second.find(id);
    if (a == linked().first.end() || b == linked().second.end()) {
      c.not_transferable.push_back("the linked binaries do not name it: no thread can move into the new code");
      return;
    }
    const diff::TransferSide old_side{old_, old_def, a->second->value, old_types_.frame_at(a->second->value), old_types_};
    const diff::TransferSide new_side{new_, new_def, b->second->value, new_types_.frame_at(b->second->value), new_types_};
    const auto binary = new_.binary().path();
    diff::find_transfers(old_side, new_side, [&](uint64_t address) { return source_line(binary, address); },
                         [&](const std::string& callee) { return waits(callee); }, continuing, c);
    // A frame that may point to changed data moves too: at the commit its
    // old frame is a root of the traversal (migrate/frame_holders.h), so its
    // pointers are rewritten in place before they are copied (by graft at the
    // commit, reading through the commit's writes; or by the frame's rebuild
    // when its call returns).
  }

  // A function whose code changed because it inlines a changed function says so.
  void explain_inlining() {
    auto inlined = read_inlined_calls(new_.binary());
    if (!inlined) return;  // only the explanation is poorer
    std::map<std::string, std::string> changed;  // symbol name -> identity
    for (const auto& f : patch_.manifest.functions)
      changed[plain_name(f.identity)] = f.identity;
    for (auto& f : patch_.manifest.functions) {
      if (!f.replaces) continue;
      const std::string name = plain_name(f.identity);
      auto it = inlined->find(name);
      if (it == inlined->end()) continue;
      std::string through, all;
      size_t listed = 0;
      for (const auto& callee : it->second) {
        if (callee == name) continue;
        if (changed.count(callee)) through += (through.empty() ? "" : ", ") + changed[callee];
        if (listed++ < 3) all += (all.empty() ? "" : ", ") + callee;
      }
      if (listed > 3) all += ", ...";
      if (!through.empty()) f.reason += " (it inlines " + through + ", which changed)";
      else if (!all.empty() && f.reason == "its machine code changed")
        f.reason += " (in itself, or in what it inlines: " + all + ")";
    }
  }

  // Copies a section of the new build into the patch (once) and queues it for linking.
  int include(SectionRef ref) {
    if (auto it = piece_of_.find(ref); it != piece_of_.end()) return it->second;
    const ElfSection& s = new_.section(ref);
    PatchPiece piece;
    piece.name = s.name;
    piece.kind = piece_kind(s);
    piece.align = s.align;
    piece.size = s.size;
    if (piece.kind != PieceKind::Bss) piece.bytes.assign(s.data.begin(), s.data.end());
    const int index = static_cast<int>(patch_.pieces.size());
    patch_.pieces.push_back(std::move(piece));
    piece_of_[ref] = index;
    queue_.push_back(ref);
    return index;
  }

  // A replaced function has two symbols of one name: its new definition, and
  // the reference that reaches the newest version through the canonical entry
  // (so that a later patch redirects every caller, this patch's included).
  uint32_t add_symbol(PatchSymbol symbol) {
    const std::string key = symbol.name + (symbol.piece >= 0 ? "#defined" : "#external");
    auto [it, inserted] = symbol_of_.emplace(key, static_cast<uint32_t>(patch_.symbols.size()));
    if (inserted) patch_.symbols.push_back(std::move(symbol));
    return it->second;
  }

  uint32_t external(const std::string& name) { return add_symbol({name, -1, 0, 0, false}); }

  // Defines a named function or object of the new build in the patch.
  Result<uint32_t> define(const std::string& id) {
    const Definition* def = new_.find(id);
    if (!def) return make_error("internal: {} is not defined in the new build", id);
    const int piece = include(def->section);
    const ElfSymbol& s = new_.symbol(def->section.object, def->symbol);
    return add_symbol({id, piece, s.value, s.size, def->function});
  }

  Status link_piece(SectionRef ref) {
    const int piece = piece_of_.at(ref);
    const std::string where = new_.owner_identity(ref) ? *new_.owner_identity(ref) : new_.section(ref).name;
    for (const auto& r : new_.relocations(ref)) {
      const bool thread_local_access = relocation_is_thread_local(r.type);
      if (!relocation_width(r.type)) {
        if (thread_local_access)
          return make_error("{} reaches a thread-local variable through {} (the general- or local-dynamic model of "
                            "-fPIC code), which graft cannot patch: build the executable without -fPIC (graft "
                            "patches local-exec and initial-exec accesses); nothing was written",
                            where, relocation_name(r.type));
        return make_error("{} uses a {} relocation, which graft cannot patch yet", where, relocation_name(r.type));
      }
      auto target = diff::resolve_target(new_, ref, r);
      if (!target) return target.error().context(where);
      const bool thread_local_target = target->kind != Target::External && (new_.section(target->section).flags & SHF_TLS);
      if (thread_local_target != thread_local_access && !(thread_local_access && target->kind == Target::External))
        return make_error("{} refers to {} with a {} relocation, which graft cannot patch", where,
                          target->name.empty() ? new_.section(target->section).name : target->name,
                          relocation_name(r.type));
      uint32_t symbol = 0;
      // A heap type tag's flag (member_facts_format.h): set where the new build defines it, since the new
      // code's tags ask the new build's question. The running binary has it as a local symbol no patch
      // could resolve, so the patch carries the definition.
      if (!thread_local_access && heap_types_flag(target->name)) {
        if (new_.find(target->name)) {
          GRAFT_ASSIGN(symbol, define(target->name));
        } else {
          symbol = external(target->name);
        }
        patch_.pieces[piece].relocations.push_back({r.offset, r.type, symbol, target->offset});
        continue;
      }
      switch (target->kind) {
        case Target::External:
          // A shared library's thread-local: only through the initial-exec GOT
          // entry the running binary has for it (checked in record_base_symbols).
          if (thread_local_access) {
            if (r.type != R_X86_64_GOTTPOFF)
              return make_error("{} reaches the shared library's thread-local {} through {}, which graft cannot patch",
                                where, target->name, relocation_name(r.type));
            if (library_thread_locals_.insert(target->name).second)
              patch_.manifest.notes.push_back("thread-local " + target->name +
                                              " of a shared library: reached through the running binary's GOT entry");
          }
          symbol = external(target->name);
          break;
        case Target::Named: {
          if (!target->or_end_of.empty()) GRAFT_TRY(check_boundary(*target, where));
          auto linked = into_included_body(*target, r.type);
          if (!linked) linked = named(target->name);
          GRAFT_ASSIGN(symbol, std::move(*linked));
          break;
        }
        case Target::Anonymous: {
          if (thread_local_target)
            return make_error("{} refers to an unnamed thread-local variable in {}, which graft cannot patch", where,
                              new_.section(target->section).name);
          const int data = include(target->section);
          symbol = add_symbol({fmt::format("piece:{}", data), data, 0, 0, false});
          break;
        }
      }
      patch_.pieces[piece].relocations.push_back({r.offset, r.type, symbol, target->offset});
    }
    return ok();
  }

  // A reference through a section's symbol to where one definition ends and
  // the next begins means either, when the one that ends is an array (its end
  // is an address C code uses) or of no known type; it is linked to the one
  // that begins, which is right only if the running binary has the same two
  // side by side.
  Status check_boundary(const Target& target, const std::string& where) {
    const auto& old_linked = linked().first;
    if (const auto ending = linked().second.find(target.or_end_of); ending != linked().second.end())
      if (const Variable* v = new_types_.variable_at(ending->second->value);
          v && v->type >= 0 && new_types_.at(v->type).kind != TypeKind::Array)
        return ok();
    const auto begins = old_linked.find(target.name), ends = old_linked.find(target.or_end_of);
    const Definition* ended = new_.find(target.or_end_of);
    const bool side_by_side =
        begins != old_linked.end() && ends != old_linked.end() && ended &&
        ends->second->size == new_.symbol(ended->section.object, ended->symbol).size &&
        ends->second->value + ends->second->size == begins->second->value;
    if (side_by_side) return ok();
    return make_error("{} refers to the address where {} ends and {} begins (both in section {}), and the running "
                      "binary does not place them side by side, so graft cannot tell which it means: restart the "
                      "program for this change; nothing was written",
                      where, target.or_end_of, target.name, new_.section(target.section).name);
  }

  // A reference into the middle of a function this patch carries (a jump
  // table's entry, a computed goto's label, a branch back from a split-off
  // cold part) means this copy's code, not the running version's code at
  // the same offset: it is linked to the copy. A reference to the entry
  // (a call, a function's address: its offset is where the field lies
  // relative to the end of the instruction) goes through named().
  std::optional<Result<uint32_t>> into_included_body(const Target& target, uint32_t type) {
    const Definition* def = new_.find(target.name);
    if (!def || !def->function || !piece_of_.count(def->section)) return std::nullopt;
    const int64_t entry = relocation_is_pc_relative(type) ? -4 : 0;
    if (target.offset == entry) return std::nullopt;
    return define(target.name);
  }

  // A reference to a named function or object: the running process's own
  // definition where it exists and may be shared, otherwise the patch's copy.
  Result<uint32_t> named(const std::string& id) {
    const Definition* def = new_.find(id);
    const Definition* old_def = old_.find(id);
    if (!def) return make_error("internal: no definition of {}", id);
    if (def->function) return old_def ? external(id) : define(id);
    const ElfSection& s = new_.section(def->section);
    if ((s.flags & SHF_TLS) || (old_def && (old_.section(old_def->section).flags & SHF_TLS)))
      return thread_local_variable(id, *def, old_def);
    if (!is_constant_data(s)) {
      if (old_def && retyped_.count(id)) {
        if (moved_data_.insert(id).second)
          patch_.manifest.notes.push_back("global " + id + " changed type: new storage, filled from the old value at commit");
        return define(id);
      }
      if (old_def) {
        kept_state_.insert(id);
        return external(id);
      }
      if (added_data_.insert(id).second) patch_.manifest.added_data.push_back(id);
      return define(id);
    }
    if (old_def && compare_.same_section(old_def->section, def->section)) return external(id);
    if (old_def && replaced_constants_.insert(id).second)
      patch_.manifest.notes.push_back("read-only " + id + " changed: the new code uses a new copy");
    return define(id);
  }

  // A thread-local variable of the executable: every running thread has its
  // own copy in a static TLS block sized when the thread started, so new code
  // can only use one that exists, unchanged, in the running version (linked by
  // its offset from the thread pointer, see link.cpp).
  Result<uint32_t> thread_local_variable(const std::string& id, const Definition& def, const Definition* old_def) {
    const bool now = new_.section(def.section).flags & SHF_TLS;
    if (!old_def)
      return make_error("thread-local variable {} is new: existing threads have no storage for it (their TLS blocks "
                        "were sized when they started); make it an ordinary global, or restart the program to use "
                        "it; nothing was written", id);
    const bool before = old_.section(old_def->section).flags & SHF_TLS;
    if (now != before)
      return make_error("{} {} thread-local in the new version: running threads cannot switch its storage; restart "
                        "the program for this change; nothing was written", id, now ? "becomes" : "is no longer");
    const auto& a = old_.symbol(old_def->section.object, old_def->symbol);
    const auto& b = new_.symbol(def.section.object, def.symbol);
    if (a.size != b.size || retyped_.count(id))
      return make_error("thread-local variable {} changes size or type ({} -> {} bytes): its storage in running "
                        "threads cannot be replaced; nothing was written", id, a.size, b.size);
    if (thread_locals_.insert(id).second)
      patch_.manifest.notes.push_back("thread-local " + id + ": each running thread keeps its own value");
    return external(id);
  }

  // Whether the user said a function's threads are not there (--allow-stuck-threads NAME).
  bool stuck_threads_allowed(const std::string& identity) const {
    return std::any_of(request_.stuck_threads_allowed.begin(), request_.stuck_threads_allowed.end(),
                       [&](const std::string& n) { return identity_named(identity, n); });
  }

  // A replaced function that never returns while the program serves (main,
  // a thread's loop started at start-up) whose threads have no place to go:
  // at a call of its service point where they wait, the frame neither
  // continues in the new code nor is a transfer point (main continuable at
  // its start-up calls says nothing of the call it lives in). The patch could
  // never apply to a running process (graft apply would wait until its
  // timeout): refused, unless the user says its threads are not there
  // (--allow-stuck-threads).
  Status check_never_returning(diff::StartupAnalysis& analysis) {
    std::unique_ptr<diff::StartupAnalysis> old_analysis;  // made only if a replaced function lives
    for (auto& f : patch_.manifest.functions) {
      if (!f.replaces) continue;
      const std::string how = analysis.lives(f.identity);
      if (how.empty()) continue;
      Continuation& c = f.continuation;
      auto has_place = [&](uint64_t back) {  // a return address of the old code
        return std::any_of(c.returns.begin(), c.returns.end(), [&](const auto& r) { return r.first == back; }) ||
               std::any_of(c.transfers.begin(), c.transfers.end(), [&](const auto& t) { return t.old_return == back; });
      };
      // Where its threads are: the old code's service calls.
      if (!old_analysis) old_analysis = std::make_unique<diff::StartupAnalysis>(old_, std::set<std::string>{});
      const auto service = old_analysis->service_returns(f.identity);
      const size_t stuck = std::count_if(service.begin(), service.end(), [&](uint64_t b) { return !has_place(b); });
      std::vector<std::string> places;
      if (c.continuable)
        places.push_back(fmt::format("{} call{} where its frames continue", c.returns.size(),
                                     c.returns.size() == 1 ? "" : "s"));
      if (!c.transfers.empty())
        places.push_back(fmt::format("{} transfer point{}", c.transfers.size(), c.transfers.size() == 1 ? "" : "s"));
      c.calls.insert(c.calls.begin(), fmt::format("never returns ({}): its threads move into the new code at {}{}", how,
                                                  places.empty() ? "no place" : fmt::format("{}", fmt::join(places, " and ")),
                                                  stuck ? fmt::format(", none of them at {} of the {} calls it serves at",
                                                                      stuck, service.size())
                                                        : ""));
      // A function that continues somewhere says nothing of its service calls: each must have a place. One
      // whose body changed keeps the rule it had: a transfer point anywhere (a thread per connection, in
      // tinyproxy's handle_connection, moves at the calls it makes and leaves when its connection ends).
      const bool placed = c.continuable && !service.empty() ? stuck == 0 : c.continuable || !c.transfers.empty();
      if (placed) continue;
      if (stuck_threads_allowed(f.identity)) {
        patch_.manifest.notes.push_back(fmt::format("{} never returns ({}) and its threads have no place to move "
                                                    "into the new code; written anyway (--allow-stuck-threads): "
                                                    "graft apply waits for them until its timeout", f.identity, how));
        continue;
      }
      // Why its service calls are no place: their own verdicts (--explain's lines).
      std::string continuity = fmt::format("not continuable ({})", c.reason);
      if (c.continuable) {
        std::string line;  // the first service call's own verdict
        for (uint64_t back : service)
          if (auto known = not_continuing_[f.identity].find(back); line.empty() && !has_place(back) &&
                                                                   known != not_continuing_[f.identity].end())
            line = " (" + known->second + ")";
        continuity = fmt::format("its frames do not continue at the call{} it serves at{}", stuck == 1 ? "" : "s", line);
      }
      const std::string why = c.not_transferable.empty() ? "no call of it qualifies" : c.not_transferable.front();
      return make_error("{} never returns ({}) and is replaced, but its threads have no place to move into the new "
                        "code: {} and no transfer point ({}{}); graft apply would wait for them until its timeout. "
                        "`graft diff --explain` lists each call and why; pass --allow-stuck-threads {} to write the "
                        "patch anyway (for a process where no thread runs it); nothing was written",
                        f.identity, how, continuity, why,
                        c.not_transferable.size() > 1 ? fmt::format("; {} more", c.not_transferable.size() - 1) : "",
                        plain_name(f.identity));
    }
    return ok();
  }

  // A function that never returns while the program serves (main, a thread's
  // loop), left as it is, whose frame at every call it serves at may point to
  // changed data where DWARF does not say where that pointer is: its threads
  // always have that frame on their stack, so graft apply would wait for them
  // until its timeout (nginx built with gcc, whose location lists leave main's
  // pointers unplaced and which has no records of where pointers are kept).
  // Refused, unless the user says its threads are not there (--allow-stuck-threads).
  Status check_frames_that_never_leave() {
    if (plan_.frame_holders.empty()) return ok();
    diff::StartupAnalysis old_analysis(old_, {});
    for (const auto& holder : plan_.frame_holders) {
      if (std::any_of(patch_.manifest.functions.begin(), patch_.manifest.functions.end(),
                      [&](const auto& f) { return f.identity == holder.identity; }))
        continue;  // replaced: its frames continue or move by the rules of check_never_returning
      const std::string how = old_analysis.lives(holder.identity);
      if (how.empty()) continue;
      const auto service = old_analysis.service_returns(holder.identity);
      const auto unknown = holder.live(DataPlan::FrameHolder::Places::Unknown);
      // A return address is one past its call: a range reaches one byte further (plan_frame_holders).
      auto unplaced = [&](uint64_t back) {
        return std::any_of(unknown.begin(), unknown.end(), [&](const auto& r) { return r.first <= back && back <= r.second; });
      };
      if (service.empty() || !std::all_of(service.begin(), service.end(), unplaced)) continue;
      // The first call's line in the running binary (one byte before its return address).
      std::string where;
      if (auto symbol = linked().first.find(holder.identity); symbol != linked().first.end())
        where = source_line(old_.binary().path(), symbol->second->value + service.front() - 1);
      // One of several modes its caller chooses among: a process serving in another never has its frame.
      if (const std::string chooser = old_analysis.mode_of(holder.identity); !chooser.empty()) {
        patch_.manifest.notes.push_back(fmt::format("{} never returns ({}) and its frame may point to changed data "
                                                    "where DWARF does not say, at every call it serves at; it is one "
                                                    "of the ways {} serves, so a process may run another: graft apply "
                                                    "waits for a thread in it until its timeout",
                                                    holder.identity, how, chooser));
        continue;
      }
      if (stuck_threads_allowed(holder.identity)) {
        patch_.manifest.notes.push_back(fmt::format("{} never returns ({}) and its frame may point to changed data "
                                                    "where DWARF does not say, at every call it serves at; written "
                                                    "anyway (--allow-stuck-threads): graft apply waits for its threads "
                                                    "until its timeout", holder.identity, how));
        continue;
      }
      return make_error("{} never returns ({}), and at {} it serves at{} its frame may point to changed data where "
                        "DWARF does not say where the pointer is: its threads always have that frame, so graft apply "
                        "would wait for them until its timeout. Build with graft-cc (its records show where pointers "
                        "to each struct are kept, and DWARF places its locals), or pass --allow-stuck-threads {} to "
                        "write the patch anyway (for a process where no thread runs it); nothing was written",
                        holder.identity, how, service.size() == 1 ? "the call" : "every call",
                        where.empty() ? "" : " (" + where + ")", plain_name(holder.identity));
    }
    return ok();
  }

  // New state that the new version sets in code the running process has run
  // already and will not run again (start-up code, code behind a once-flag:
  // diff/startup.h) keeps its static value after the update. Each such
  // global or new member is refused, unless update-time code in the
  // --transform file names it or the user says its static value is right.
  Status check_startup_state() {
    std::set<std::string> old_globals;
    for (const auto& [id, def] : old_.definitions())
      if (!def.function) old_globals.insert(id);
    diff::StartupAnalysis analysis(new_, std::move(old_globals));
    GRAFT_TRY(check_never_returning(analysis));
    GRAFT_TRY(check_frames_that_never_leave());
    // A global with new storage that the commit-time code names gets its value
    // there, after the migration: a string its new size cuts is no loss.
    if (const std::string& at_commit = patch_.manifest.update_code.at_commit; !at_commit.empty() && !plan_.empty()) {
      for (const auto& id : retyped_)
        if (analysis.named_from({at_commit}, id)) plan_.set_at_commit.push_back(id);
      if (!plan_.set_at_commit.empty()) patch_.data_plan = encode_data_plan(plan_);
    }
    // A replaced function that runs only at start-up: what it now does
    // differently never happens in the running process (darkhttpd 1.15's
    // new MIME types are parsed into the table at start-up). Said, not refused.
    for (const auto& f : patch_.manifest.functions) {
      if (!f.replaces) continue;
      const std::string how = analysis.startup_only(f.identity);
      if (how.empty()) continue;
      // GRAFT_RERUN is the way to run it again only for a function without parameters.
      const FrameTypes* frame = nullptr;
      if (auto symbol = linked().second.find(f.identity); symbol != linked().second.end())
        frame = new_types_.frame_at(symbol->second->value);
      patch_.manifest.notes.push_back(fmt::format(
          "start-up code changed: {} runs only at start-up ({}); what it does differently now does not happen in the "
          "running process{}", f.identity, how,
          frame && frame->parameters == 0
              ? fmt::format(" (GRAFT_RERUN({}) in a --transform file runs it once at update time, if that is safe to "
                            "repeat)", plain_name(f.identity))
              : ""));
    }
    const auto binary = new_.binary().path();
    auto line_of = [&](const std::string& function, uint64_t offset) {
      auto symbol = linked().second.find(function);
      return symbol == linked().second.end() ? std::string() : source_line(binary, symbol->second->value + offset);
    };
    // Changed read-only data that start-up code read (a version string
    // formatted into a header at start-up): what it computed keeps the old
    // value. Said, not refused: the running state is kept by design.
    std::vector<diff::StartupWatch> read_at_startup;
    for (const auto& id : replaced_constants_) read_at_startup.push_back({id, {}, true});
    for (const auto& u : analysis.find(read_at_startup)) {
      const std::string where = line_of(u.function, u.offset);
      patch_.manifest.notes.push_back(fmt::format(
          "start-up code read the changed read-only {}: {} ({}{}) ran with the old value, and what it computed from "
          "it keeps that (GRAFT_ON_UPDATE in a --transform file can compute it again at update time)",
          u.global, u.function, where.empty() ? "" : where + ", ", u.how));
    }
    std::vector<diff::StartupWatch> watch;
    std::map<std::string, std::string> struct_of;  // a grown struct global -> its old struct ("struct config")
    for (const auto& id : added_data_) watch.push_back({id, {}});
    for (const auto& root : plan_.roots) {
      if (root.new_type < 0) continue;
      const Type& before = plan_.old_types.at(root.old_type);
      const Type& after = plan_.new_types.at(root.new_type);
      if (after.kind != TypeKind::Struct || before.kind != TypeKind::Struct) continue;
      diff::StartupWatch w{root.identity, {}};
      struct_of[root.identity] = before.name;
      // New members, those of a struct member included (beanstalkd's srv.conns.setpos: a Heap inside the Server).
      std::function<void(const Type&, const Type&, uint64_t, const std::string&, int)> add_new =
          [&](const Type& was, const Type& is, uint64_t base, const std::string& prefix, int depth) {
            for (const auto& m : is.members) {
              if (m.name.empty()) continue;
              auto o = std::find_if(was.members.begin(), was.members.end(),
                                    [&](const Member& x) { return x.name == m.name; });
              const Type& type = plan_.new_types.at(m.type);
              if (o == was.members.end()) {
                const uint64_t size = m.bit_size ? (m.bit_offset + m.bit_size + 7) / 8 : type.size;
                w.members.push_back({prefix + m.name, base + m.offset, base + m.offset + std::max<uint64_t>(size, 1)});
              } else if (const Type& old_type = plan_.old_types.at(o->type);
                         depth < 4 && type.kind == TypeKind::Struct && old_type.kind == TypeKind::Struct) {
                add_new(old_type, type, base + m.offset, prefix + m.name + ".", depth + 1);
              }
            }
          };
      add_new(before, after, 0, "", 0);
      if (!w.members.empty()) watch.push_back(std::move(w));
    }
    if (watch.empty()) return ok();
    // What the patch runs at update time (the --transform file's GRAFT_INIT,
    // GRAFT_RERUN and GRAFT_ON_UPDATE): a global it names gets its value.
    const UpdateCode& update = patch_.manifest.update_code;
    const std::set<std::string> initialised = update.initialised_globals();
    std::vector<std::string> update_time_roots = update.reruns;
    for (const auto& i : update.inits) update_time_roots.push_back(i.function);
    if (!update.on_update.empty()) update_time_roots.push_back(update.on_update);
    if (!update.at_commit.empty()) update_time_roots.push_back(update.at_commit);
    auto named = [](const std::string& id, const std::vector<std::string>& names) {
      return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return identity_named(id, n); });
    };
    std::vector<std::string> refused;
    std::string first;
    std::optional<diff::StartupWrite> first_write;
    for (const auto& w : analysis.find(watch)) {
      const std::string what = w.member.empty() ? w.global : w.global + "." + w.member;
      const std::string where = line_of(w.function, w.offset);
      // A write through its address (passed to a call, kept): "may be".
      const std::string set_by =
          fmt::format("{}{} ({}{}{})", w.through_address ? "may be set by " : "is set by ", w.function,
                      where.empty() ? "" : where + ", ", w.through_address ? "its address goes to a call or into memory "
                                                                             "there, which may write it; " : "", w.how);
      if (named(w.global, request_.static_values) || (!w.member.empty() && named(what, request_.static_values))) {
        patch_.manifest.notes.push_back(fmt::format("start-up state: {} {}; it keeps its static value "
                                                    "(--accept-static-value)", what, set_by));
        continue;
      }
      if (!w.member.empty() && plan_.user_transformers.count(struct_of[w.global])) {
        patch_.manifest.notes.push_back(fmt::format("start-up state: {} {}; the user's transformer for {} "
                                                    "gives it its value", what, set_by, struct_of[w.global]));
        continue;
      }
      if (w.member.empty() && (initialised.count(w.global) || analysis.named_from(update_time_roots, w.global))) {
        patch_.manifest.notes.push_back(fmt::format("start-up state: {} {}; update-time code in {} gives it "
                                                    "its value", what, set_by,
                                                    request_.transform_file.filename().string()));
        continue;
      }
      refused.push_back(what);
      if (first_write) continue;
      first_write = w;
      first = fmt::format("{} {} {}, which the running process will not run again",
                          w.member.empty() ? "new global" : "new member", what, set_by);
    }
    if (refused.empty()) return ok();
    // The way out for the first one: update-time code for a global, a
    // transformer for a member (its struct's new storage is filled at the commit).
    const std::string& global = first_write->global;
    const std::string& member = first_write->member;
    const std::string name = plain_name(global) + (member.empty() ? "" : "." + member);
    std::string fix;
    const bool transformable = plan_.transformable(struct_of[global]);
    const std::string tag = transformable_tag(plan_.new_name_of(struct_of[global]));  // a renamed one's: its new name
    if (!member.empty() && transformable && !tag.empty()) {
      fix = fmt::format("give it its value in a transformer in a --transform file (GRAFT_TRANSFORM({}, from, to) {{ "
                        "to->{} = ...; }})", tag, member);
    } else if (!member.empty()) {
      // A struct converted as a global's retyped value, or renamed: no transformer of the user's for it.
      fix = fmt::format("give it its value at the commit in a --transform file (GRAFT_AT_COMMIT() {{ {} = ...; "
                        "return 0; }})", name);
    } else {
      std::string type = "type";
      if (auto symbol = linked().second.find(global); symbol != linked().second.end())
        if (const Variable* v = new_types_.variable_at(symbol->second->value)) type = new_types_.spell(v->type);
      fix = fmt::format("give it its value at update time in a --transform file (GRAFT_INIT({}, {}, value) {{ ... }}, "
                        "or GRAFT_RERUN(function) of a setup function)", name, type);
    }
    return make_error("{}: after the update it would keep its static value; {}, or pass --accept-static-value {} if the "
                      "static value is right{}; nothing was written",
                      first, fix, name,
                      refused.size() > 1 ? fmt::format(" ({} more: {})", refused.size() - 1,
                                                       fmt::join(refused.begin() + 1, refused.end(), ", "))
                                         : "");
  }

  // Where every identity of the running binary lives, found from its symbol table.
  Status record_base_symbols() {
    const ElfFile& bin = old_.binary();
    auto& base = patch_.manifest.base_symbols;
    for (const auto& [id, s] : old_.linked_symbols()) base[id] = {s->value, s->size, s->type == STT_FUNC};
    for (const auto& f : patch_.manifest.functions)
      if (f.replaces && !base.count(f.identity))
        return make_error("cannot find {} in the symbol table of {} (stripped binary?)", f.identity,
                          bin.path().string());
    patch_.manifest.base_imports = imported_slots(bin);
    for (const auto& name : library_thread_locals_)
      if (!patch_.manifest.base_imports.count(name))
        return make_error("the new code uses {}, a shared library's thread-local variable, which the running binary "
                          "never reaches through an initial-exec GOT entry: graft has no offset for it; nothing was "
                          "written", name);
    note_kept_state();
    return ok();
  }

  // Every global of both versions keeps its running value: those the patch's
  // code uses, and any whose initial value changed though nothing in the
  // patch uses it (nginx's writable `Server: nginx/1.30.1` string, which the
  // unchanged code keeps sending). Said, so that nobody expects the new value.
  void note_kept_state() {
    std::set<std::string> changed_initial;
    for (const auto& [id, def] : new_.definitions()) {
      const Definition* old_def = old_.find(id);
      if (def.function || !old_def || old_def->function || retyped_.count(id) || thread_locals_.count(id)) continue;
      const ElfSection& section = new_.section(def.section);
      if (is_constant_data(section) || (section.flags & SHF_TLS) || is_constant_data(old_.section(old_def->section)))
        continue;
      if (!compare_.same_section(old_def->section, def.section)) changed_initial.insert(id);
    }
    for (const auto& id : kept_state_)
      if (!changed_initial.count(id)) patch_.manifest.notes.push_back("state kept: " + id + " keeps its running value");
    for (const auto& id : changed_initial)
      patch_.manifest.notes.push_back(fmt::format(
          "state kept: {} keeps its running value; its initial value changed in the new version, which the running "
          "program never gets (GRAFT_ON_UPDATE in a --transform file can set it at update time){}",
          id, kept_state_.count(id) ? "" : "; no code of the patch uses it"));
  }

  const Build& old_;
  Build& new_;
  const DiffRequest& request_;
  Comparator compare_;
  Patch patch_;
  DataPlan plan_;
  std::map<SectionRef, int> piece_of_;
  std::vector<SectionRef> queue_;
  std::map<std::string, uint32_t> symbol_of_;
  std::set<std::string> kept_state_, added_data_, replaced_constants_, retyped_, moved_data_, thread_locals_;
  std::set<std::string> library_thread_locals_;  // external thread-locals the new code reaches (GOTTPOFF)
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> holders_;
  std::map<std::string, bool> waits_;  // waits(): callee -> whether a thread may wait in it
  // Per replaced function, its calls where a frame does not continue: return offset -> --explain's line.
  std::map<std::string, std::map<uint64_t, std::string>> not_continuing_;
  TypeTable old_types_, new_types_;  // both builds' DWARF types and frames
  std::optional<MemberFacts> old_facts_, new_facts_;  // graft-cc's records of the untyped members
  std::vector<DataDirective> directives_;  // the user's --transform file's, for the plan and its way back
  std::pair<std::map<std::string, const ElfSymbol*>, std::map<std::string, const ElfSymbol*>> linked_;  // DataPlan::frame_holders
};

}  // namespace

namespace {

Result<std::pair<std::unique_ptr<Build>, std::unique_ptr<Build>>> load_builds(const DiffRequest& request) {
  auto old_build = Build::load(request.old_binary);
  if (!old_build) return old_build.error().context(request.old_binary.string());
  auto new_build = Build::load(request.new_binary);
  if (!new_build) return new_build.error().context(request.new_binary.string());
  if (old_build.value()->build_id() == new_build.value()->build_id())
    return make_error("{} and {} are the same build (build-id {}): there is nothing to patch",
                      request.old_binary.string(), request.new_binary.string(), old_build.value()->build_id());
  GRAFT_TRY(check_foreign_members(*old_build.value(), *new_build.value()));
  return std::make_pair(std::move(old_build.value()), std::move(new_build.value()));
}

}  // namespace

Result<Patch> generate_patch(const DiffRequest& request) {
  GRAFT_ASSIGN(auto builds, load_builds(request));
  return Generator(*builds.first, *builds.second, request).run();
}

Result<std::string> transformer_header(const DiffRequest& request) {
  GRAFT_ASSIGN(auto builds, load_builds(request));
  return Generator(*builds.first, *builds.second, request).header();
}

std::string explain_patch(const Patch& patch) {
  const Manifest& m = patch.manifest;
  std::string out = fmt::format("patch {}: {} -> {}\n", m.patch_id, m.base_build_id, m.result_build_id);
  size_t replaced = 0;
  for (const auto& f : m.functions) replaced += f.replaces;
  out += fmt::format("functions: {} replaced, {} added\n", replaced, m.functions.size() - replaced);
  for (const auto& f : m.functions) {
    out += fmt::format("  {:<8} {:<40} {}\n", f.replaces ? "replace" : "add", f.identity, f.reason);
    if (!f.replaces) continue;
    const Continuation& c = f.continuation;
    if (c.continuable)
      out += fmt::format("           continuable: a thread may stay inside it; its frames continue in the new code "
                         "(at {} call{}){}\n", c.returns.size(), c.returns.size() == 1 ? "" : "s",
                         c.reason.empty() ? "" : "; " + c.reason);
    else
      out += fmt::format("           not continuable: {}\n", c.reason);
    for (const auto& t : c.transfers) {
      out += fmt::format("           transferable at {}: a thread just back from it moves into the new code "
                         "(+{:#x} -> +{:#x}, {} values moved)\n", t.at, t.old_return, t.new_return, t.moves.size());
      std::vector<std::string> moved;
      for (const auto& mv : t.moves)  // a struct's new bytes are several moves: named once
        if (std::find(moved.begin(), moved.end(), mv.what) == moved.end()) moved.push_back(mv.what);
      out += fmt::format("             moved: {}\n", fmt::join(moved, ", "));
    }
    for (const auto& why : c.not_transferable) out += fmt::format("           not transferable at {}\n", why);
    for (const auto& call : c.calls) out += fmt::format("           {}\n", call);
  }
  const auto initialised = m.update_code.initialised_globals();
  for (const auto& d : m.added_data)
    out += fmt::format("  {:<8} {:<40} new global, {}\n", "add", d,
                       initialised.count(d) ? "given its value at update time (GRAFT_INIT, below)" : "set to its initial value");
  for (const auto& r : m.removed_functions)
    out += fmt::format("  {:<8} {:<40} not in the new version; the running copy stays for callers\n", "removed", r);
  for (const auto& n : m.notes) out += "  note     " + n + "\n";
  if (const UpdateCode& u = m.update_code; !u.empty()) {
    out += fmt::format("update-time code ({}): run in the target before the commit, in this order, in a borrowed "
                       "thread while the others run\n", u.file);
    for (const auto& i : u.inits) out += fmt::format("  init     {:<40} by {}\n", i.global, i.function);
    for (const auto& r : u.reruns) out += fmt::format("  rerun    {:<40} the new version's, once\n", r);
    if (!u.on_update.empty()) out += fmt::format("  run      {}\n", u.on_update);
    if (!u.at_commit.empty())
      out += fmt::format("  commit   {:<40} at the commit, every thread stopped, after the data is transformed; "
                         "nonzero rolls the commit back\n", u.at_commit);
  }
  if (patch.data_plan.empty()) return out;
  auto plan = decode_data_plan(patch.data_plan);
  if (!plan) return out + "data: " + plan.error().message + "\n";
  out += fmt::format("data: {} type{} change{}; transformed at commit by generated transformers{}\n",
                     plan->changes.size(), plan->changes.size() == 1 ? "" : "s", plan->changes.size() == 1 ? "s" : "",
                     plan->user_transformers.empty() ? "" : ", then the user's (" + plan->user_transformer_file + ")");
  for (const auto& c : plan->changes) {
    out += fmt::format("  {}\n", c.name);
    for (const auto& d : c.details) out += fmt::format("      {}\n", d);
    // A renamed struct's transformer goes by its new name.
    const std::string tag = transformable_tag(plan->renamed.count(c.name) ? plan->renamed.at(c.name) : c.name);
    if (tag.empty() || plan->old_types.at(c.old_type).kind != TypeKind::Struct) continue;
    if (auto it = plan->user_transformers.find(c.name); it != plan->user_transformers.end())
      out += fmt::format("      transformer: the user's {} ({}), run in the target after the default\n", it->second,
                         plan->user_transformer_file);
    else
      out += "      transformer: the generated default\n";
    out += fmt::format("      to write your own (--transform FILE.c): GRAFT_TRANSFORM({}, from, to) {{ ... }}, that is\n"
                       "        {}\n", tag, user_transformer_signature(tag));
  }
  for (const auto& r : plan->roots)
    out += r.new_type >= 0
               ? fmt::format("  global   {:<40} {} -> {}: new storage, filled from the old value\n", r.identity,
                             plan->old_types.spell(r.old_type), plan->new_types.spell(r.new_type))
               : fmt::format("  root     {:<40} live objects are found from it ({})\n", r.identity,
                             plan->old_types.spell(r.old_type));
  for (const auto& p : plan->declared_pointers)
    out += p.by_tag     ? fmt::format("  tagged   {}: its word at offset {} followed as a {} * where the block it "
                                      "points to is tagged as one (a number equal to such an address would be taken "
                                      "for one)\n",
                                      p.source, p.offset, plan->old_types.spell(p.pointee))
           : p.recorded ? fmt::format("  recorded {}: followed like it\n", p.source)
                        : fmt::format("  declared {}: followed like a {} *\n", p.source, plan->old_types.spell(p.pointee));
  for (const auto& g : plan->untyped_globals)
    out += g.recorded
               ? fmt::format("  recorded {}: followed like it\n", g.source)
               : fmt::format("  declared {}: followed like a {} *\n", g.source, plan->old_types.spell(g.pointee));
  for (const auto& u : plan->declared_union_members)
    out += fmt::format("  declared {}: while the tag is {}, {} ({}) is the live member\n", u.source,
                       u.tag_value, u.member, plan->old_types.spell(u.member_type));
  for (const auto& n : plan->notes) out += "  note     " + n + "\n";
  if (plan->inverse)
    out += "  revert   the data goes back by the inverse plan (fields by name; a narrowed value is checked to fit)\n";
  else if (!plan->irreversible.empty())
    out += "  revert   refused: " + plan->irreversible + "\n";
  {
    std::string list, roots, clobbered;
    for (const auto& f : plan->frame_holders) {
      if (std::any_of(m.functions.begin(), m.functions.end(), [&](const auto& c) { return c.identity == f.identity; }))
        continue;
      using Places = DataPlan::FrameHolder::Places;
      const size_t unknown = f.live(Places::Unknown).size(), in_clobbered = f.live(Places::CallClobbered).size();
      if (unknown + in_clobbered < f.live().size()) roots += (roots.empty() ? "" : ", ") + f.identity;
      if (unknown) list += (list.empty() ? "" : ", ") + f.identity;
      if (in_clobbered) clobbered += (clobbered.empty() ? "" : ", ") + f.identity;
    }
    if (!clobbered.empty())
      out += "  wait     until no thread executes where such a pointer is only in a register a call clobbers (a frame "
             "waiting for a call there holds nothing): " + clobbered + "\n";
    if (!roots.empty())
      out += "  frames   pointers to changed data in locals whose DWARF location is known are roots: " + roots + "\n";
    if (!list.empty())
      out += "  wait     until no thread is where a frame may point to changed data and DWARF does not say where "
             "that pointer is: " + list + "\n";
  }
  return out;
}

}  // namespace graft
