// What graft gives a target and what it takes from one, when the target may
// be hostile: any thread of it may, at any moment, replace a descriptor
// number with another file, change bytes graft wrote into its memory, or
// map something else where graft mapped. So graft never opens a path of the
// target's (/proc/PID/fd/N, a file name /proc/PID/maps prints) to write or
// map it; the files it makes are its own and sealed before the target sees
// them; and what the target holds is checked by identity (device and inode
// of graft's own descriptor), never by name or number.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/unique_fd.h"
#include "target/process.h"
#include "target/remote.h"

namespace graft {

// A file as the kernel knows it.
struct FileId {
  uint64_t device = 0, inode = 0;
  bool operator==(const FileId&) const = default;
};
Result<FileId> file_id(int fd);

// A memfd of graft's own named `name` (so that a mapping of it shows as
// /memfd:NAME in the target's maps) holding `bytes`, then sealed: its size
// and contents can never change again, whoever holds it (F_SEAL_SHRINK,
// GROW, WRITE, SEAL). A private mapping of it may still be written (copy on
// write): the patch's data and graft's commit writes.
Result<UniqueFd> sealed_memfd(const std::string& name, std::span<const uint8_t> bytes);

// Puts a copy of graft's descriptor `local` into the target, without graft
// opening anything of the target's: the target makes a socket pair
// (injected socketpair), graft sends `local` over its own copy of one end
// (pidfd_getfd, checked to be a Unix socket whose peer is the target) and
// the target receives it (injected recvmsg, SCM_RIGHTS). The number the
// target got is then checked to be `local`'s file through graft's own copy
// of it. `what` names the file in errors. The target's descriptors are
// closed when the scope of the result closes.
Result<RemoteFd> hand_over(RemoteSyscalls& syscalls, int local, const std::string& what);

// Whether `size` bytes at `start` in the target are mapped, wholly, from
// `file`, `start` from its `offset` and the rest in order after it.
Status check_mapped_from(pid_t pid, uint64_t start, uint64_t size, uint64_t offset, const FileId& file,
                         const std::string& what);

// The file a mapping of the target maps, opened read-only: through
// /proc/PID/map_files (the kernel's link to the very file mapped) when
// graft may (CAP_SYS_ADMIN), else by the path the maps give; either way only
// if it is a regular file with the device and inode the kernel gives for the
// mapping. Never a device, FIFO or socket a hostile target put in its place.
Result<UniqueFd> open_mapped_file(pid_t pid, const MemoryMap& mapping);

// The running executable of `pid` as the kernel knows it (/proc/PID/exe).
Result<FileId> executable_id(pid_t pid);

// A process as graft first looked at it (its pidfd and executable), to know
// later that the PID still names it and that it runs the same program:
// what graft read of it before attaching (its maps, its build) describes
// what it attached to.
class ProcessIdentity {
 public:
  static Result<ProcessIdentity> take(pid_t pid);
  // Not exited (the PID was not reused), and no other program exec'd.
  Status still_same() const;

 private:
  ProcessIdentity(pid_t pid, UniqueFd pidfd, FileId executable)
      : pid_(pid), pidfd_(std::move(pidfd)), executable_(executable) {}
  pid_t pid_;
  UniqueFd pidfd_;
  FileId executable_;
};

// Whether the process has ended or is ending (killed): gone, reported by its
// pidfd, or every thread of it a zombie or exiting.
bool process_exited(pid_t pid);

}  // namespace graft
