// What graft opens of a target's is what the kernel says is mapped: a file
// the target put at the mapping's name since (a FIFO, a link, another file)
// is refused, and opening it never blocks. graft's own memfd is sealed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <gtest/gtest.h>

#include "../support/harness.h"
#include "target/handover.h"

namespace graft::test {
namespace {

namespace fs = std::filesystem;

class MappedFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir.path() / "library.so";
    std::ofstream(path) << std::string(8192, 'x');
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    mapped = mmap(nullptr, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    ASSERT_NE(mapped, MAP_FAILED);
    auto maps = read_maps(getpid());
    ASSERT_TRUE(maps) << maps.error().message;
    for (const auto& m : *maps)
      if (m.start == reinterpret_cast<uint64_t>(mapped)) mapping = m;
    ASSERT_EQ(mapping.path, path.string());
  }
  void TearDown() override {
    if (mapped != MAP_FAILED) munmap(mapped, 8192);
  }
  // The same mapping as the maps name it, where map_files cannot reach it
  // (an unprivileged graft): only the name is left to open.
  MemoryMap by_name_only() const {
    MemoryMap m = mapping;
    m.start = m.end = 0;
    return m;
  }
  void replace_with(const std::function<void()>& make) {
    fs::remove(path);
    make();
  }

  TempDir dir;
  fs::path path;
  void* mapped = MAP_FAILED;
  MemoryMap mapping;
};

TEST_F(MappedFiles, TheMappedFileOpensByMapFilesAndByName) {
  auto file = open_mapped_file(getpid(), mapping);
  ASSERT_TRUE(file) << file.error().message;
  auto by_name = open_mapped_file(getpid(), by_name_only());
  ASSERT_TRUE(by_name) << by_name.error().message;
  const auto id = file_id(by_name->get());
  ASSERT_TRUE(id);
  EXPECT_EQ(id.value(), (FileId{mapping.device, mapping.inode}));
}

TEST_F(MappedFiles, AFifoAtTheNameIsRefusedWithoutBlocking) {
  replace_with([&] { ASSERT_EQ(mkfifo(path.c_str(), 0644), 0); });
  auto file = open_mapped_file(getpid(), by_name_only());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message.find("is not the one at"), std::string::npos) << file.error().message;
  // map_files still reaches the very file mapped.
  auto real = open_mapped_file(getpid(), mapping);
  if (geteuid() == 0) {
    EXPECT_TRUE(real) << real.error().message;
  }
}

TEST_F(MappedFiles, ALinkOrAnotherFileAtTheNameIsRefused) {
  const fs::path other = dir.path() / "other.so";
  std::ofstream(other) << std::string(8192, 'y');
  replace_with([&] { fs::create_symlink(other, path); });
  EXPECT_FALSE(open_mapped_file(getpid(), by_name_only()));
  replace_with([&] { fs::copy_file(other, path); });
  EXPECT_FALSE(open_mapped_file(getpid(), by_name_only()));
}

TEST(SealedMemfd, HoldsTheBytesAndCannotChange) {
  const std::vector<uint8_t> bytes(10000, 0x5a);
  auto memfd = sealed_memfd("graft:test", bytes);
  ASSERT_TRUE(memfd) << memfd.error().message;
  std::vector<uint8_t> back(bytes.size());
  ASSERT_EQ(pread(memfd->get(), back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, bytes);
  EXPECT_EQ(pwrite(memfd->get(), "x", 1, 0), -1);
  EXPECT_NE(ftruncate(memfd->get(), 0), 0);
  EXPECT_EQ(fcntl(memfd->get(), F_ADD_SEALS, 0), -1);  // F_SEAL_SEAL: no seal may be taken off or added
  // A private mapping of it is still writable (copy on write): the patch's data.
  void* at = mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE, memfd->get(), 0);
  ASSERT_NE(at, MAP_FAILED);
  static_cast<uint8_t*>(at)[0] = 1;
  munmap(at, bytes.size());
  ASSERT_EQ(pread(memfd->get(), back.data(), 1, 0), 1);
  EXPECT_EQ(back[0], 0x5a);
  EXPECT_EQ(mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_SHARED, memfd->get(), 0), MAP_FAILED);
}

}  // namespace
}  // namespace graft::test
