#include "target/journal.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace graft {
namespace {

enum Type : uint32_t {
  kTarget = 1, kPlanted, kRemoved, kHeld, kBorrowed, kReturned, kFlagRaised, kFlagLowered, kMapped,
  kUnmapAfterCommit, kUnmapped, kCommitBegins, kCommitEnds, kFinished, kTrapHandler, kTrapHandlerRemoved,
};

// The payload of one record, built field by field.
class Out {
 public:
  Out& u64(uint64_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + 8);
    return *this;
  }
  Out& blob(std::span<const uint8_t> b) {
    u64(b.size());
    bytes.insert(bytes.end(), b.begin(), b.end());
    return *this;
  }
  Out& regs(const Registers& r) {
    const auto* p = reinterpret_cast<const uint8_t*>(static_cast<const user_regs_struct*>(&r));
    bytes.insert(bytes.end(), p, p + sizeof(user_regs_struct));
    return *this;
  }
  std::vector<uint8_t> bytes;
};

// Reads a payload back; a short one reads as zeros (never past its end).
class In {
 public:
  explicit In(std::span<const uint8_t> b) : b_(b) {}
  uint64_t u64() {
    uint64_t v = 0;
    if (at_ + 8 <= b_.size()) std::memcpy(&v, b_.data() + at_, 8);
    at_ += 8;
    return v;
  }
  std::vector<uint8_t> blob() {
    const uint64_t n = u64();
    if (at_ > b_.size() || n > b_.size() - at_) return {};
    std::vector<uint8_t> out(b_.begin() + static_cast<ptrdiff_t>(at_), b_.begin() + static_cast<ptrdiff_t>(at_ + n));
    at_ += n;
    return out;
  }
  Registers regs() {
    Registers r;
    if (at_ + sizeof(user_regs_struct) <= b_.size())
      std::memcpy(static_cast<user_regs_struct*>(&r), b_.data() + at_, sizeof(user_regs_struct));
    at_ += sizeof(user_regs_struct);
    return r;
  }

 private:
  std::span<const uint8_t> b_;
  size_t at_ = 0;
};

bool write_all(int fd, const void* data, size_t size, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size) {
    const ssize_t n = pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

Result<Journal> Journal::create(pid_t pid) {
  Journal j;
  j.fd_ = memfd_create("graft-journal", MFD_CLOEXEC);
  if (j.fd_ < 0) return errno_error("cannot create the update's journal", errno);
  const uint64_t zero = 0;
  if (!write_all(j.fd_, &zero, 8, 0)) return errno_error("cannot write the update's journal", errno);
  j.append(kTarget, Out().u64(static_cast<uint64_t>(pid)).bytes);
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) close(fd_);
}

Journal::Journal(Journal&& other) noexcept : fd_(other.fd_), end_(other.end_) { other.fd_ = -1; }

Journal& Journal::operator=(Journal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    end_ = other.end_;
    other.fd_ = -1;
  }
  return *this;
}

void Journal::append(uint32_t type, std::span<const uint8_t> payload) {
  if (fd_ < 0) return;
  std::vector<uint8_t> record(8);
  const uint32_t size = static_cast<uint32_t>(payload.size());
  std::memcpy(record.data(), &type, 4);
  std::memcpy(record.data() + 4, &size, 4);
  record.insert(record.end(), payload.begin(), payload.end());
  if (!write_all(fd_, record.data(), record.size(), end_)) return;
  end_ += record.size();
  (void)write_all(fd_, &end_, 8, 0);  // the record counts from now on
}

void Journal::planted(RemoteAddress address, uint8_t original) {
  append(kPlanted, Out().u64(address.value()).u64(original).bytes);
}
void Journal::removed(RemoteAddress address) { append(kRemoved, Out().u64(address.value()).bytes); }
void Journal::held() { append(kHeld, {}); }
void Journal::borrowed(const BorrowedThreadRecord& r) {
  append(kBorrowed, Out()
                        .u64(static_cast<uint64_t>(r.tid))
                        .regs(r.own)
                        .u64(r.syscall_at)
                        .u64(static_cast<uint64_t>(r.syscall_number))
                        .u64(r.stack_start)
                        .u64(r.stack_end)
                        .bytes);
}
void Journal::returned(pid_t tid) { append(kReturned, Out().u64(static_cast<uint64_t>(tid)).bytes); }
void Journal::flag_raised(RemoteAddress address, std::span<const uint8_t> previous) {
  append(kFlagRaised, Out().u64(address.value()).blob(previous).bytes);
}
void Journal::flag_lowered() { append(kFlagLowered, {}); }
void Journal::mapped(RemoteAddress start, uint64_t size) { append(kMapped, Out().u64(start.value()).u64(size).bytes); }
void Journal::unmap_after_commit(RemoteAddress start, uint64_t size) {
  append(kUnmapAfterCommit, Out().u64(start.value()).u64(size).bytes);
}
void Journal::unmapped(RemoteAddress start) { append(kUnmapped, Out().u64(start.value()).bytes); }
void Journal::trap_handler(RemoteAddress page, uint64_t size) {
  append(kTrapHandler, Out().u64(page.value()).u64(size).bytes);
}
void Journal::trap_handler_removed() { append(kTrapHandlerRemoved, {}); }
void Journal::commit_begins(const std::vector<UndoWrite>& undo, const std::map<pid_t, Registers>& before,
                            const std::vector<EpollWatch>& epoll_before) {
  Out out;
  out.u64(undo.size());
  for (const auto& w : undo) out.u64(w.address.value()).blob(w.previous);
  out.u64(before.size());
  for (const auto& [tid, regs] : before) out.u64(static_cast<uint64_t>(tid)).regs(regs);
  out.u64(epoll_before.size());
  for (const auto& w : epoll_before)
    out.u64(static_cast<uint64_t>(w.epoll_fd)).u64(static_cast<uint64_t>(w.fd)).u64(w.events).u64(w.data);
  append(kCommitBegins, out.bytes);
}
void Journal::commit_ends(bool done) { append(kCommitEnds, Out().u64(done).bytes); }
void Journal::finished() { append(kFinished, {}); }

Result<JournalState> Journal::read(int fd) {
  uint64_t length = 0;
  if (pread(fd, &length, 8, 0) != 8) return make_error("the update's journal is empty");
  std::vector<uint8_t> bytes(length);
  if (length < 8 || pread(fd, bytes.data(), length, 0) != static_cast<ssize_t>(length))
    return make_error("the update's journal is shorter than its header says");
  JournalState s;
  for (uint64_t at = 8; at + 8 <= length;) {
    uint32_t type = 0, size = 0;
    std::memcpy(&type, bytes.data() + at, 4);
    std::memcpy(&size, bytes.data() + at + 4, 4);
    if (at + 8 + size > length) return make_error("the update's journal has a torn record");
    In in{std::span<const uint8_t>(bytes).subspan(at + 8, size)};
    at += 8 + size;
    switch (type) {
      case kTarget: s.pid = static_cast<pid_t>(in.u64()); break;
      case kPlanted: {
        const uint64_t address = in.u64();
        s.planted[address] = static_cast<uint8_t>(in.u64());
        s.ever_planted.insert(address);
        break;
      }
      case kRemoved: s.planted.erase(in.u64()); break;
      case kHeld: s.held = true; break;
      case kBorrowed: {
        BorrowedThreadRecord r;
        r.tid = static_cast<pid_t>(in.u64());
        r.own = in.regs();
        r.syscall_at = in.u64();
        r.syscall_number = static_cast<long>(in.u64());
        r.stack_start = in.u64();
        r.stack_end = in.u64();
        s.borrowed[r.tid] = r;
        break;
      }
      case kReturned: s.borrowed.erase(static_cast<pid_t>(in.u64())); break;
      case kFlagRaised: {
        const uint64_t address = in.u64();
        s.flag = std::make_pair(address, in.blob());
        break;
      }
      case kFlagLowered: s.flag.reset(); break;
      case kMapped: {
        const uint64_t start = in.u64();
        s.mapped[start] = in.u64();
        break;
      }
      case kUnmapAfterCommit: {
        const uint64_t start = in.u64();
        s.unmap_after_commit[start] = in.u64();
        break;
      }
      case kUnmapped: {
        const uint64_t start = in.u64();
        s.mapped.erase(start);
        s.unmap_after_commit.erase(start);
        break;
      }
      case kCommitBegins: {
        s.commit_begun = true;
        s.commit_done = false;
        s.undo.clear();
        s.registers_before.clear();
        for (uint64_t n = in.u64(); n-- > 0;) {
          UndoWrite w;
          w.address = RemoteAddress(in.u64());
          w.previous = in.blob();
          s.undo.push_back(std::move(w));
        }
        for (uint64_t n = in.u64(); n-- > 0;) {
          const auto tid = static_cast<pid_t>(in.u64());
          s.registers_before[tid] = in.regs();
        }
        s.epoll_before.clear();
        for (uint64_t n = in.u64(); n-- > 0;) {
          EpollWatch w;
          w.epoll_fd = static_cast<int>(in.u64());
          w.fd = static_cast<int>(in.u64());
          w.events = static_cast<uint32_t>(in.u64());
          w.data = in.u64();
          s.epoll_before.push_back(w);
        }
        break;
      }
      case kCommitEnds:
        s.commit_begun = false;
        if (in.u64()) {
          s.commit_done = true;
          s.mapped.clear();  // what the update mapped is the target's now
        }
        s.undo.clear();
        s.registers_before.clear();
        s.epoll_before.clear();
        break;
      case kFinished: s.finished = true; break;
      case kTrapHandler: {
        const uint64_t page = in.u64();
        s.trap_handler = std::make_pair(page, in.u64());
        break;
      }
      case kTrapHandlerRemoved: s.trap_handler.reset(); break;
      default: return make_error("the update's journal has a record of unknown type {}", type);
    }
  }
  return s;
}

}  // namespace graft
