// The patch: code and data pieces with relocations, symbols and a manifest,
// stored as a versioned ELF relocatable object (.graft).
//
// Symbol names are identities that survive between builds: a global symbol is
// its name; a local one is "<tu>::<name>", where <tu> is the translation unit's
// path within its source tree (two files may each have a static `helper`).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "crypto/signing.h"

namespace graft {

// The name an identity has in its source: "main.c::helper" -> "helper".
inline std::string plain_name(const std::string& identity) {
  const size_t at = identity.rfind("::");
  return at == std::string::npos ? identity : identity.substr(at + 2);
}
// Whether a user's `name` means `identity`: the identity itself, or a static
// of that name in any file.
inline bool identity_named(const std::string& identity, const std::string& name) {
  return identity == name || identity.ends_with("::" + name);
}

// 2: per-function continuation; 3: update-time code; 4: the seal (a BLAKE2b
// digest of every byte, an optional Ed25519 signature) replaces the checksum,
// and frame transfers convert integers (TransferMove::from_size).
inline constexpr int kPatchFormatVersion = 4;

enum class PieceKind { Text, ReadOnly, Data, Bss };
const char* piece_kind_name(PieceKind kind);

struct PatchRelocation {
  uint64_t offset = 0;  // within the piece
  uint32_t type = 0;    // R_X86_64_*
  uint32_t symbol = 0;  // index into Patch::symbols
  int64_t addend = 0;
};

struct PatchPiece {
  std::string name;  // e.g. ".text.compute" (for reading a patch with readelf)
  PieceKind kind = PieceKind::Text;
  uint64_t align = 1;
  uint64_t size = 0;
  std::vector<uint8_t> bytes;  // empty for Bss
  std::vector<PatchRelocation> relocations;
};

struct PatchSymbol {
  std::string name;   // identity; for an anonymous piece "piece:<index>"
  int piece = -1;     // -1: defined outside the patch, resolved in the target
  uint64_t offset = 0;
  uint64_t size = 0;
  bool function = false;
};

// Whether a thread may stay inside a replaced function across the update:
// its old and new machine code are equivalent for continuation (the same
// instructions and frame layout; they differ only in relocated fields,
// displacements off other registers and immediates, and no value computed
// from those is kept across a call), so a frame waiting for a call returns
// into the new code at the corresponding address.
// Moving a thread from a function's old body into its new one at a call both
// versions share (on-stack replacement), when the function is not
// continuable: the thread must sit exactly at the old return address (the
// call just returned, every register its own); its frame is rebuilt for the
// new code. A value of the rebuilt frame comes from the old frame or is one
// the new code computes before its loop (graft/src/diff/transfer.h).
struct TransferValue {
  enum class Kind : uint8_t {
    Register,      // DWARF register `reg` (0-15: rax rdx rcx rbx rsi rdi rbp rsp r8-r15)
    Frame,         // memory at the frame's CFA + offset
    FrameAddress,  // the value CFA + offset
    Constant,      // the value `offset`
    CodeAddress,   // the address the new code's RIP-relative lea at entry + offset computes, or its GOT load reads
  };
  Kind kind = Kind::Register;
  int reg = -1;
  int64_t offset = 0;
};
struct TransferMove {
  TransferValue from;  // in the old frame (Register, Frame) or a value
  TransferValue to;    // in the new frame: Register or Frame
  uint64_t size = 8;   // bytes (Frame to Frame: the whole object)
  std::string what;    // the variable, or why the value is needed
  // An integer whose type changed: `from` has `from_size` bytes (1, 2, 4,
  // 8), extended as C converts it (sign-extended if the old type is signed)
  // or truncated to `size`. 0: the same bytes, copied.
  uint64_t from_size = 0;
  bool sign_extend = false;
};
struct FrameTransfer {
  uint64_t old_return = 0, new_return = 0;  // offsets from the entry
  int64_t old_frame = 0, new_frame = 0;     // CFA - rsp at those addresses
  std::string at;                           // "the call to read at main.c:30"
  std::vector<TransferMove> moves;          // every read happens before any write
};

// What the patch reader accepts for a frame transfer of a function whose new
// code is `code_size` bytes: "" if it is well formed, else what is wrong.
// The diff keeps only such transfers (a move it cannot encode, such as a
// value in a vector register, makes that call no transfer point).
std::string malformed_transfer(const FrameTransfer& t, uint64_t code_size);

struct Continuation {
  bool continuable = false;
  std::string reason;  // why not (the first differing instruction, with its offset), or what limits it
  // Return addresses where a frame may continue: offsets from the entry, old code -> new code.
  std::vector<std::pair<uint64_t, uint64_t>> returns;
  // Not continuable: where a thread may move into the new body, and, for
  // --explain, why each other call is not such a place.
  std::vector<FrameTransfer> transfers;
  std::vector<std::string> not_transferable;
  // For --explain: each call where a thread may wait (a blocking call) and
  // each call where a frame may not continue, with the verdict and why
  // ("the call to fgets at main.c:77 continues").
  std::vector<std::string> calls;
};

// Why a function is in the patch, for `graft diff --explain`.
struct FunctionChange {
  std::string identity;
  std::string reason;  // "changed", "added", "code changed through inlining of X", ...
  uint32_t symbol = 0; // its definition in the patch
  bool replaces = false;  // true: an existing function whose entry is redirected
  Continuation continuation;  // replaced functions only
};

// Code of the --transform file that graft apply runs in the target after
// mapping the patch and before waiting for the safe moment (graft.h
// GRAFT_INIT, GRAFT_RERUN, GRAFT_ON_UPDATE), in this order: the inits, then
// the reruns, then the on-update function; each in the file's order.
struct UpdateCode {
  struct Init {
    std::string global;    // identity of the new global ("main.c::custom_hdrs"), defined by the patch
    std::string function;  // "graft_init__custom_hdrs", defined by the patch
  };
  std::vector<Init> inits;
  std::vector<std::string> reruns;  // identities of functions of the new version, taking no parameters
  std::string on_update;            // "graft_on_update", or ""
  std::string at_commit;            // "graft_at_commit", or "": run at the commit, every thread stopped
  std::string runner;               // the patch's function that makes one call and traps
  std::string file;                 // the --transform file, for messages
  bool empty() const { return inits.empty() && reruns.empty() && on_update.empty() && at_commit.empty(); }
  // The new globals a GRAFT_INIT gives a value (identities).
  std::set<std::string> initialised_globals() const {
    std::set<std::string> out;
    for (const auto& i : inits) out.insert(i.global);
    return out;
  }
};

struct Manifest {
  int format_version = kPatchFormatVersion;
  std::string patch_id;          // content hash, hex
  std::string base_build_id;     // the binary this patch applies to
  std::string result_build_id;   // the binary it turns the program into
  std::string base_binary;       // path of the base binary at diff time (information)
  std::string result_binary;
  std::string created;           // ISO 8601 UTC
  std::vector<FunctionChange> functions;
  std::vector<std::string> added_data;    // new globals, with their initialisers
  std::vector<std::string> removed_functions;
  std::vector<std::string> notes;         // what --explain adds (kept state, refusals avoided)
  UpdateCode update_code;                 // run in the target before the commit
  // Every function and data identity of the base binary -> link-time address
  // and size, and the GOT slot of every symbol it imports (for stacked patches
  // and for calls into shared libraries).
  struct BaseSymbol { uint64_t address = 0; uint64_t size = 0; bool function = false; };
  std::map<std::string, BaseSymbol> base_symbols;
  std::map<std::string, uint64_t> base_imports;  // name -> link-time address of its GOT slot
  bool base_pie = true;
  uint64_t base_load_address = 0;  // lowest PT_LOAD p_vaddr, page-aligned
};

struct Patch {
  Manifest manifest;
  std::vector<PatchPiece> pieces;
  std::vector<PatchSymbol> symbols;
  // What the commit does to live data whose types change (data/plan.h,
  // JSON); empty when the patch changes code only.
  std::string data_plan;
  // Filled by read_patch from the file's seal (below): the digest of every
  // byte before it, and who signed that digest, if anyone did.
  crypto::Digest digest{};
  std::optional<crypto::PublicKey> signer;
};

// A patch file is an ELF relocatable object followed by its seal, the last
// kPatchSealBytes of the file:
//   "GRAFTSL" 0x04 | image size (8, LE) | BLAKE2b-256 of the image (32) |
//   signer's Ed25519 public key (32) | signature of the digest (64)
// Unsigned, the key and signature are zero. Every byte of the file is thus
// covered: the image by the digest, the seal by its own checks.
inline constexpr size_t kPatchSealBytes = 144;

// The image followed by its seal (signed with `sign_with`, if given).
std::vector<uint8_t> seal_patch_image(std::vector<uint8_t> image, const crypto::SecretKey* sign_with = nullptr);

// A stable name for a patch's contents (manifest, pieces, symbols, data
// plan; not its creation time): 16 hex digits of their BLAKE2b.
std::string patch_content_id(const Patch& patch);

// Writes the image and its seal; with `sign_with`, the seal carries its signature.
Status write_patch(const Patch& patch, const std::filesystem::path& path, const crypto::SecretKey* sign_with = nullptr);
// Reads and strictly validates a patch; nothing is trusted before this returns.
Result<Patch> read_patch(const std::filesystem::path& path);
Result<Patch> parse_patch(std::vector<uint8_t> image, const std::string& label);

}  // namespace graft
