#include "target/epoll.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <optional>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/unique_fd.h"
#include "target/process.h"
#include "target/remote.h"

namespace graft {

bool EpollWatch::disarmed() const {
  constexpr uint32_t kPrivate = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
  return (events & EPOLLONESHOT) && !(events & ~kPrivate);
}
bool EpollWatch::exclusive() const { return (events & EPOLLEXCLUSIVE) != 0; }

namespace {
enum class Kernel { Other, Epoll, Ring };
// What a descriptor is, by its /proc link: an epoll instance, an io_uring, or anything else.
Kernel kind_of(int dir, const char* name) {
  char link[64];
  const ssize_t n = readlinkat(dir, name, link, sizeof link);
  const std::string_view text(link, n > 0 ? static_cast<size_t>(n) : 0);
  if (text == "anon_inode:[eventpoll]") return Kernel::Epoll;
  if (text == "anon_inode:[io_uring]") return Kernel::Ring;
  return Kernel::Other;
}
bool is_epoll(int dir, const char* name) { return kind_of(dir, name) == Kernel::Epoll; }
}  // namespace

Result<DescriptorScan> scan_descriptors(pid_t pid, const DescriptorScan* before) {
  DIR* dir = opendir(fmt::format("/proc/{}/fd", pid).c_str());
  if (!dir) {
    if (errno == EACCES || errno == EPERM) return permission_denied(pid, "reading the descriptors of");
    return make_error("cannot read the descriptors of process {}: {}", pid, std::strerror(errno));
  }
  DescriptorScan out;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const int fd = std::atoi(entry->d_name);
    out.all.push_back(fd);
    // readlinkat costs microseconds each: asked again only of a descriptor
    // the earlier scan did not see (a closed one fails, and is skipped).
    const bool known = before && std::binary_search(before->all.begin(), before->all.end(), fd);
    auto in = [fd](const std::vector<int>& sorted) { return std::binary_search(sorted.begin(), sorted.end(), fd); };
    const Kernel kind = !known ? kind_of(dirfd(dir), entry->d_name)
                        : in(before->epolls) ? Kernel::Epoll
                        : in(before->rings)  ? Kernel::Ring
                                             : Kernel::Other;
    if (kind == Kernel::Epoll) out.epolls.push_back(fd);
    if (kind == Kernel::Ring) out.rings.push_back(fd);
  }
  closedir(dir);
  std::sort(out.all.begin(), out.all.end());
  std::sort(out.epolls.begin(), out.epolls.end());
  std::sort(out.rings.begin(), out.rings.end());
  return out;
}

Result<std::vector<EpollWatch>> read_epoll_watches(pid_t pid, const DescriptorScan* before, DescriptorScan* scanned) {
  GRAFT_ASSIGN(DescriptorScan now, scan_descriptors(pid, before));
  std::vector<EpollWatch> out;
  std::string text;
  for (const int epoll : now.epolls) {
    UniqueFd info(open(fmt::format("/proc/{}/fdinfo/{}", pid, epoll).c_str(), O_RDONLY | O_CLOEXEC));
    if (!info.valid()) continue;  // closed since
    text.clear();
    char buffer[65536];
    for (ssize_t n; (n = read(info.get(), buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
    // "tfd:        5 events:       19 data:     55d4c3a2b8e0  pos:0 ino:1f sdev:d" per watch.
    for (size_t at = text.find("tfd:"); at != std::string::npos; at = text.find("tfd:", at + 4)) {
      const char* p = text.c_str() + at + 4;
      char* end = nullptr;
      EpollWatch w;
      w.epoll_fd = epoll;
      w.fd = static_cast<int>(std::strtol(p, &end, 10));
      const char* events = std::strstr(end, "events:");
      const char* data = events ? std::strstr(events, "data:") : nullptr;
      if (!data) continue;
      w.events = static_cast<uint32_t>(std::strtoul(events + 7, nullptr, 16));
      w.data = std::strtoull(data + 5, nullptr, 16);
      const char* line_end = std::strchr(data, '\n');
      const char* inode = std::strstr(data, "ino:");
      const char* device = inode ? std::strstr(inode, "sdev:") : nullptr;
      if (device && (!line_end || device < line_end)) {
        w.inode = std::strtoull(inode + 4, nullptr, 16);
        // The kernel's own encoding: 12 bits of major above 20 of minor.
        const unsigned long sdev = std::strtoul(device + 5, nullptr, 16);
        w.device = makedev(sdev >> 20, sdev & 0xfffff);
      }
      out.push_back(w);
    }
  }
  if (scanned) *scanned = std::move(now);
  return out;
}

namespace {

// The epoll descriptors of process `other` (none if graft may not look).
std::vector<int> epolls_of(pid_t other) {
  std::vector<int> out;
  DIR* fds = opendir(fmt::format("/proc/{}/fd", other).c_str());
  if (!fds) return out;
  while (const dirent* fd = readdir(fds))
    if (fd->d_name[0] >= '0' && fd->d_name[0] <= '9' && is_epoll(dirfd(fds), fd->d_name))
      out.push_back(std::atoi(fd->d_name));
  closedir(fds);
  return out;
}

// Whether one of `descriptors` of `other` is epoll instance `epoll_fd` of `pid` (kcmp).
bool same_epoll(pid_t pid, int epoll_fd, pid_t other, const std::vector<int>& descriptors) {
  return std::any_of(descriptors.begin(), descriptors.end(),
                     [&](int fd) { return syscall(SYS_kcmp, pid, other, KCMP_FILE, epoll_fd, fd) == 0; });
}

}  // namespace

void find_shared_epolls(pid_t pid, DescriptorScan& scan) {
  scan.shared.clear();
  if (scan.epolls.empty()) return;
  DIR* proc = opendir("/proc");
  if (!proc) return;
  while (const dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const pid_t other = static_cast<pid_t>(std::atoi(entry->d_name));
    if (other == pid) continue;
    const std::vector<int> theirs = epolls_of(other);  // read once, compared with each of ours
    if (theirs.empty()) continue;
    for (const int epoll : scan.epolls)
      if (!scan.shared.count(epoll) && same_epoll(pid, epoll, other, theirs)) scan.shared[epoll] = other;
  }
  closedir(proc);
}

pid_t child_sharing_epoll(pid_t pid, int epoll_fd) {
  DIR* tasks = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!tasks) return 0;
  pid_t found = 0;
  while (const dirent* task = readdir(tasks)) {
    if (found || task->d_name[0] < '0' || task->d_name[0] > '9') continue;
    std::ifstream children(fmt::format("/proc/{}/task/{}/children", pid, task->d_name));
    for (pid_t child = 0; !found && children >> child;)
      if (same_epoll(pid, epoll_fd, child, epolls_of(child))) found = child;
  }
  closedir(tasks);
  return found;
}

std::set<std::pair<int, int>> reused_descriptors(const std::vector<EpollWatch>& watches) {
  std::set<std::pair<int, int>> seen, out;
  for (const auto& w : watches)
    if (!seen.insert({w.epoll_fd, w.fd}).second) out.insert({w.epoll_fd, w.fd});
  return out;
}

std::string why_data_cannot_be_set(const EpollWatch& watch, const std::set<std::pair<int, int>>& reused) {
  if (watch.exclusive()) return "it is registered with EPOLLEXCLUSIVE, which the kernel lets no one modify";
  if (reused.count({watch.epoll_fd, watch.fd}))
    return fmt::format("another watch of the instance is registered under the same descriptor {} (its first file "
                       "was closed and the number reused), and the kernel names a watch by it",
                       watch.fd);
  return {};
}

extern "C" const uint8_t graft_epoll_batch_start[], graft_epoll_batch_end[];

namespace {

Error cannot_set(const TracedProcess& process, const EpollWatch& watch, int64_t error) {
  const bool gone = error == EBADF || error == ENOENT;
  return Error{fmt::format("cannot set the data of fd {}'s watch in epoll instance {} of process {}: {}{}", watch.fd,
                           watch.epoll_fd, process.pid(), std::strerror(static_cast<int>(error)),
                           gone ? " (the descriptor it was registered under was closed, or reused, since: the kernel "
                                  "names a watch by it; such a release needs a restart)"
                                : "")};
}

// The event EPOLL_CTL_MOD is given for `w`, as the kernel reads it: packed
// on x86-64, 4 bytes of events then 8 of data.
std::array<uint8_t, sizeof(epoll_event)> event_of(const EpollDataWrite& w) {
  epoll_event event{};
  event.events = w.watch.events;
  event.data.u64 = w.data;
  std::array<uint8_t, sizeof(epoll_event)> bytes{};
  std::memcpy(bytes.data(), &event, sizeof event);
  return bytes;
}

}  // namespace

Status set_epoll_data_each(TracedProcess& process, std::span<const EpollDataWrite> writes, size_t& done) {
  done = 0;
  return with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    for (const auto& w : writes) {
      GRAFT_ASSIGN(auto scratch, RemoteScratch::below_stack(process, syscalls.thread(), event_of(w)));
      GRAFT_ASSIGN(const int64_t r, syscalls.call(SYS_epoll_ctl, {static_cast<uint64_t>(w.watch.epoll_fd), EPOLL_CTL_MOD,
                                                                  static_cast<uint64_t>(w.watch.fd),
                                                                  scratch.address().value(), 0, 0}));
      if (r != 0) return cannot_set(process, w.watch, -r);
      ++done;
    }
    return ok();
  });
}

Status set_epoll_data_back(TracedProcess& process, std::span<const EpollWatch> watches) {
  std::vector<EpollDataWrite> back;
  for (const auto& w : watches) back.push_back({w, w.data});
  size_t done = 0;
  return set_epoll_data(process, back, done);
}

Status set_epoll_data(TracedProcess& process, std::span<const EpollDataWrite> writes, size_t& done) {
  done = 0;
  if (writes.empty()) return ok();
  // A mapping, a run and an unmapping cost about 0.6 ms: for a word or two, a call each is less.
  if (writes.size() <= 2) return set_epoll_data_each(process, writes, done);
  // The code, then the table (epoll_batch.S: a header of three words, an
  // entry of 24 bytes per watch), then a page of stack.
  constexpr uint64_t kPage = 4096, kHeader = 24, kEntry = 24;
  const auto code = std::span(graft_epoll_batch_start, graft_epoll_batch_end);
  const uint64_t table = (code.size() + 63) & ~uint64_t{63};
  std::vector<uint8_t> bytes(table + kHeader + kEntry * writes.size());
  std::copy(code.begin(), code.end(), bytes.begin());
  const uint64_t count = writes.size();
  std::memcpy(bytes.data() + table, &count, 8);
  for (size_t k = 0; k < writes.size(); ++k) {
    uint8_t* entry = bytes.data() + table + kHeader + kEntry * k;
    const auto epoll = static_cast<uint32_t>(writes[k].watch.epoll_fd), fd = static_cast<uint32_t>(writes[k].watch.fd);
    const auto event = event_of(writes[k]);
    std::memcpy(entry, &epoll, 4);
    std::memcpy(entry + 4, &fd, 4);
    std::copy(event.begin(), event.end(), entry + 8);
  }
  const uint64_t size = ((bytes.size() + kPage - 1) & ~(kPage - 1)) + kPage;
  std::optional<RemoteMapping> mapping;
  const Status mapped = with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    GRAFT_ASSIGN(auto m, RemoteMapping::anonymous(syscalls, size, "setting epoll's data words",
                                                  PROT_READ | PROT_WRITE | PROT_EXEC));
    mapping.emplace(std::move(m));
    return ok();
  });
  // Not mapped (a policy against writable code, SELinux's execmem): one call each, slower.
  if (!mapped) return set_epoll_data_each(process, writes, done);
  GRAFT_TRY(process.write(mapping->start(), bytes));
  {
    GRAFT_ASSIGN(auto borrowed, BorrowedThread::take(process));
    GRAFT_ASSIGN(const BorrowedRun run, borrowed.call(mapping->start(), (mapping->start() + table).value(),
                                                      mapping->start() + size, std::chrono::seconds(5), false));
    if (run.outcome != BorrowedRun::Trapped)
      return make_error("the code setting epoll's data words in process {} {} (pc {:#x})", process.pid(),
                        run.outcome == BorrowedRun::Faulted    ? "faulted with " + signal_name(run.signal)
                        : run.outcome == BorrowedRun::TimedOut ? std::string("did not finish within 5 s")
                                                               : "stopped with " + signal_name(run.signal),
                        run.pc);
  }
  GRAFT_ASSIGN(const auto result, process.read(mapping->start() + table + 8, 16));
  int64_t error = 0;
  std::memcpy(&done, result.data(), 8);
  std::memcpy(&error, result.data() + 8, 8);
  if (done > writes.size()) return make_error("internal: the code setting epoll's data words set {} of {}", done, count);
  if (error) return cannot_set(process, writes[done].watch, -error);
  return ok();
}

}  // namespace graft
