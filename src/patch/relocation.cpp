#include "patch/relocation.h"

#include <elf.h>

namespace graft {

std::optional<unsigned> relocation_width(uint32_t type) {
  switch (type) {
    case R_X86_64_64:
    case R_X86_64_PC64:
      return 8;
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
    case R_X86_64_32:
    case R_X86_64_32S:
    case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX:
    case R_X86_64_REX_GOTPCRELX:
    case R_X86_64_TPOFF32:   // local-exec: %fs:X@tpoff
    case R_X86_64_GOTTPOFF:  // initial-exec: X@gottpoff(%rip), a GOT slot holding the offset
      return 4;
    default:
      return std::nullopt;
  }
}

bool relocation_is_got_load(uint32_t type) {
  return type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
}

bool relocation_is_pc_relative(uint32_t type) {
  switch (type) {
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
    case R_X86_64_PC64:
    case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX:
    case R_X86_64_REX_GOTPCRELX:
    case R_X86_64_GOTTPOFF:
      return true;
    default:
      return false;
  }
}

bool relocation_is_thread_local(uint32_t type) {
  return type == R_X86_64_TPOFF32 || type == R_X86_64_GOTTPOFF || type == R_X86_64_TLSGD ||
         type == R_X86_64_TLSLD || type == R_X86_64_DTPOFF32 || type == R_X86_64_DTPOFF64 ||
         type == R_X86_64_TPOFF64 || type == R_X86_64_GOTPC32_TLSDESC || type == R_X86_64_TLSDESC_CALL;
}

const char* relocation_name(uint32_t type) {
  switch (type) {
    case R_X86_64_64: return "R_X86_64_64";
    case R_X86_64_PC64: return "R_X86_64_PC64";
    case R_X86_64_PC32: return "R_X86_64_PC32";
    case R_X86_64_PLT32: return "R_X86_64_PLT32";
    case R_X86_64_32: return "R_X86_64_32";
    case R_X86_64_32S: return "R_X86_64_32S";
    case R_X86_64_GOTPCREL: return "R_X86_64_GOTPCREL";
    case R_X86_64_GOTPCRELX: return "R_X86_64_GOTPCRELX";
    case R_X86_64_REX_GOTPCRELX: return "R_X86_64_REX_GOTPCRELX";
    case R_X86_64_TPOFF32: return "R_X86_64_TPOFF32";
    case R_X86_64_GOTTPOFF: return "R_X86_64_GOTTPOFF";
    case R_X86_64_TLSGD: return "R_X86_64_TLSGD";
    case R_X86_64_TLSLD: return "R_X86_64_TLSLD";
    case R_X86_64_DTPOFF32: return "R_X86_64_DTPOFF32";
    default: return "unknown relocation";
  }
}

}  // namespace graft
