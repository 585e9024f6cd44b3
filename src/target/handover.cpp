#include "target/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/task_state.h"

namespace graft {
namespace {

// MFD_EXEC (Linux 6.3): the memfd may be mapped executable even where
// vm.memfd_noexec makes memfds non-executable by default. Older kernels
// refuse the flag (EINVAL) and need none.
constexpr unsigned kMfdExec = 0x10;

// What hand_over puts below the target's stack for the system calls it
// injects: the socket pair, then recvmsg's message, buffer and control.
struct HandoverScratch {
  int pair[2];
  msghdr message;
  iovec data;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))];
  uint8_t byte;
};

std::span<const uint8_t> bytes_of(const HandoverScratch& scratch) {
  return {reinterpret_cast<const uint8_t*>(&scratch), sizeof scratch};
}

Error replaced(pid_t pid, const std::string& what) {
  return make_error("cannot hand {} to process {}: a thread of the process replaced or closed the descriptors graft "
                    "gave it (a hostile program?); nothing was changed", what, pid);
}

Error failed(pid_t pid, const std::string& what, const char* call, int err) {
  return make_error("cannot hand {} to process {}: {}: {}; nothing was changed", what, pid, call, std::strerror(err));
}

UniqueFd pidfd_of(pid_t pid) { return UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))); }

// graft's own copy of the target's descriptor `number`: what it is now,
// whatever the target does with the number afterwards.
Result<UniqueFd> copy_of(const UniqueFd& pidfd, pid_t pid, int number, const std::string& what) {
  UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), number, 0)));
  if (!copy.valid()) {
    if (errno == EBADF) return replaced(pid, what);
    return failed(pid, what, "pidfd_getfd", errno);
  }
  return copy;
}

// A Unix socket whose peer is process `pid` (a socket pair it made), else
// graft would be sending its file to whoever the target chose.
Status check_peer(int socket, pid_t pid, const std::string& what) {
  int domain = 0;
  socklen_t length = sizeof domain;
  if (getsockopt(socket, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0 || domain != AF_UNIX) return replaced(pid, what);
  ucred peer{};
  length = sizeof peer;
  if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.pid != pid) return replaced(pid, what);
  return ok();
}

Status send_descriptor(int socket, int fd, pid_t pid, const std::string& what) {
  uint8_t byte = 0;
  iovec data{&byte, 1};
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
  if (sendmsg(socket, &message, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
    // The other end closed: by a thread of the target's.
    if (errno == EPIPE || errno == ECONNRESET) return replaced(pid, what);
    return failed(pid, what, "sendmsg", errno);
  }
  return ok();
}

}  // namespace

Result<FileId> file_id(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno_error("fstat", errno);
  return FileId{st.st_dev, st.st_ino};
}

Result<UniqueFd> sealed_memfd(const std::string& name, std::span<const uint8_t> bytes) {
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
  if (fd < 0 && errno == EINVAL) fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return errno_error("cannot create the memfd " + name, errno);
  UniqueFd file(fd);
  if (ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) return errno_error("cannot size the memfd " + name, errno);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n <= 0) return errno_error("cannot fill the memfd " + name, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return errno_error("cannot seal the memfd " + name, errno);
  return file;
}

Result<RemoteFd> hand_over(RemoteSyscalls& syscalls, int local, const std::string& what) {
  TracedProcess& process = syscalls.process();
  const pid_t pid = process.pid();
  GRAFT_ASSIGN(const FileId wanted, file_id(local));
  // Traced by graft, the process cannot exit and give its PID to another unseen.
  const UniqueFd pidfd = pidfd_of(pid);
  if (!pidfd.valid()) return failed(pid, what, "pidfd_open", errno);

  HandoverScratch layout{};
  GRAFT_ASSIGN(auto scratch, RemoteScratch::below_stack(process, syscalls.thread(), bytes_of(layout)));
  const uint64_t base = scratch.address().value();
  auto remote = [&](const void* member) {
    return base + static_cast<uint64_t>(static_cast<const uint8_t*>(member) - reinterpret_cast<const uint8_t*>(&layout));
  };

  GRAFT_ASSIGN(const uint64_t made, syscalls.checked("make a socket pair to receive " + what, SYS_socketpair,
                                                     {AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, remote(layout.pair), 0, 0}));
  (void)made;
  GRAFT_ASSIGN(const auto pair, process.read(RemoteAddress(remote(layout.pair)), sizeof layout.pair));
  std::memcpy(layout.pair, pair.data(), sizeof layout.pair);
  RemoteFd sender(syscalls, layout.pair[0]), receiver(syscalls, layout.pair[1]);

  // Sent through graft's own copy of one end, checked to be the target's.
  {
    GRAFT_ASSIGN(const UniqueFd socket, copy_of(pidfd, pid, sender.number(), what));
    GRAFT_TRY(check_peer(socket.get(), pid, what));
    GRAFT_TRY(send_descriptor(socket.get(), local, pid, what));
  }

  layout.data = {reinterpret_cast<void*>(remote(&layout.byte)), 1};
  layout.message.msg_iov = reinterpret_cast<iovec*>(remote(&layout.data));
  layout.message.msg_iovlen = 1;
  layout.message.msg_control = reinterpret_cast<void*>(remote(layout.control));
  layout.message.msg_controllen = sizeof layout.control;
  GRAFT_TRY(process.write(scratch.address(), bytes_of(layout)));
  // Never blocks: graft sent first, and a thread that took the message meanwhile makes it fail.
  GRAFT_ASSIGN(const int64_t received,
               syscalls.call(SYS_recvmsg, {static_cast<uint64_t>(receiver.number()), remote(&layout.message),
                                           MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0, 0}));
  if (received != 1) return replaced(pid, what);
  GRAFT_ASSIGN(const auto back, process.read(scratch.address(), sizeof layout));
  std::memcpy(&layout, back.data(), sizeof layout);
  const auto* header = reinterpret_cast<const cmsghdr*>(layout.control);
  if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(int)))
    return replaced(pid, what);
  int number = -1;
  std::memcpy(&number, CMSG_DATA(header), sizeof number);
  RemoteFd fd(syscalls, number);

  // The number the target holds, and the bytes that said it, are the
  // target's: what counts is the file graft's own copy of it is.
  GRAFT_ASSIGN(const UniqueFd copy, copy_of(pidfd, pid, number, what));
  GRAFT_ASSIGN(const FileId got, file_id(copy.get()));
  if (got != wanted) return replaced(pid, what);
  return fd;
}

Status check_mapped_from(pid_t pid, uint64_t start, uint64_t size, uint64_t offset, const FileId& file,
                         const std::string& what) {
  GRAFT_ASSIGN(const auto maps, read_maps(pid));
  const uint64_t end = start + size;
  uint64_t covered = start;
  for (const auto& m : maps) {
    if (m.end <= start || m.start >= end) continue;
    if (m.start != covered || m.device != file.device || m.inode != file.inode || m.offset != offset + (m.start - start))
      return make_error("{} in process {} is not mapped from graft's file at {:#x} (a thread of the process mapped "
                        "something else there?); nothing was changed", what, pid, m.start);
    covered = m.end;
  }
  if (covered < end) return make_error("{} in process {} is no longer mapped at {:#x}; nothing was changed", what, pid, covered);
  return ok();
}

Result<UniqueFd> open_mapped_file(pid_t pid, const MemoryMap& mapping) {
  // O_PATH runs no open of the file's own (no device's, no FIFO's wait);
  // the file is opened for reading only once it is known to be the one mapped.
  UniqueFd handle(open(fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, mapping.start, mapping.end).c_str(),
                       O_PATH | O_CLOEXEC));
  if (!handle.valid() && mapping.path.starts_with("/"))
    handle = UniqueFd(open(mapping.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!handle.valid()) return errno_error(fmt::format("cannot open the file mapped at {:#x} in process {}", mapping.start, pid), errno);
  struct stat st {};
  if (fstat(handle.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != mapping.device || st.st_ino != mapping.inode)
    return make_error("the file mapped at {:#x} in process {} is not the one at {}", mapping.start, pid, mapping.path);
  UniqueFd file(open(fmt::format("/proc/self/fd/{}", handle.get()).c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return errno_error("cannot open " + mapping.path, errno);
  return file;
}

Result<FileId> executable_id(pid_t pid) {
  struct stat st {};
  if (stat(fmt::format("/proc/{}/exe", pid).c_str(), &st) != 0) {
    if (errno == EACCES || errno == EPERM) return permission_denied(pid, "reading the executable of");
    return errno_error(fmt::format("cannot find the executable of process {}", pid), errno);
  }
  return FileId{st.st_dev, st.st_ino};
}

Result<ProcessIdentity> ProcessIdentity::take(pid_t pid) {
  UniqueFd pidfd = pidfd_of(pid);
  if (!pidfd.valid()) {
    if (errno == ESRCH) return make_error("no process with PID {}", pid);
    return errno_error(fmt::format("cannot open a pidfd for process {}", pid), errno);
  }
  GRAFT_ASSIGN(const FileId executable, executable_id(pid));
  return ProcessIdentity(pid, std::move(pidfd), executable);
}

Status ProcessIdentity::still_same() const {
  pollfd ready{pidfd_.get(), POLLIN, 0};
  auto executable = executable_id(pid_);
  if (poll(&ready, 1, 0) == 1 || !executable)
    return make_error("process {} exited while graft prepared the update; nothing was changed", pid_);
  if (*executable != executable_)
    return make_error("process {} started another program (execve) while graft prepared the update; nothing was "
                      "changed", pid_);
  return ok();
}

bool process_exited(pid_t pid) {
  const UniqueFd pidfd = pidfd_of(pid);
  if (!pidfd.valid()) return errno == ESRCH;
  pollfd ready{pidfd.get(), POLLIN, 0};
  if (poll(&ready, 1, 0) == 1) return true;
  // A killed process is not reported by its pidfd while graft, its tracer,
  // has not reaped its threads: then every thread is exiting or a zombie
  // (a main thread that ended alone is a zombie too, its process alive).
  return every_task_exiting(pid);
}

}  // namespace graft
