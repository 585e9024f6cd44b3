// x86-64 relocation types graft understands, shared by the patch generator
// (comparing code) and the updater (linking a patch into a process).
#pragma once
#include <cstdint>
#include <optional>

namespace graft {

// Bytes a relocation of this type writes; nullopt for a type graft cannot handle.
std::optional<unsigned> relocation_width(uint32_t type);
bool relocation_is_pc_relative(uint32_t type);
// Whether the field is a GOT slot of its symbol (GOTPCREL, GOTPCRELX,
// REX_GOTPCRELX): the instruction loads the symbol's address.
bool relocation_is_got_load(uint32_t type);
// Whether the type reaches a thread-local variable (any TLS access model).
bool relocation_is_thread_local(uint32_t type);
const char* relocation_name(uint32_t type);

}  // namespace graft
