// The in-target registry record: what encode writes, decode reads back field
// for field; a record that is not one, or is cut short or corrupt, is refused
// with the region's address.
#include <gtest/gtest.h>

#include <cstring>

#include "apply/registry.h"

namespace graft::registry {
namespace {

Record sample(bool root) {
  Record r;
  r.sequence = 2;
  r.patch_id = "0123456789abcdef";
  r.base_build_id = "aaaa";
  r.result_build_id = "bbbb";
  r.applied_at = "2024-01-02T03:04:05Z";
  r.region_start = 0x7f0000000000;
  r.region_end = 0x7f0000004000;
  r.text_start = 0x7f0000001000;
  r.text_end = 0x7f0000001800;
  r.entries.push_back({"compute", 0x555555555140, std::string(32, '9'), "ff2500000000" + std::string(20, '0'),
                       {{0x555555555160, 0x7f0000001020}, {0x555555555170, 0x7f0000001030}}});
  r.entries.push_back({"main.c::helper", 0x555555555200, std::string(32, '9'), std::string(32, 'e'), {}});
  r.defines["compute"] = {0x7f0000001000, 64, true};
  r.defines["added_counter"] = {0x7f0000003000, 8, false};
  r.state = Applied;
  r.objects_transformed = 123;
  r.data.recorded = true;
  r.data.transformed = {{"struct node", 120}};
  r.data.moved = 7;
  r.data.references = 9;
  r.data.storage = {{"main.c::names", 0x555555558010, 0x7f0000003010, true},
                    {"main.c::sizes", 0x555555556020, 0x7f0000002020, false}};
  r.data.user_transformers = {"struct stats"};
  r.data.inverse = R"({"exact":true,"roots":[]})";
  r.data.irreversible = "it removes struct node.junk";
  if (root) {
    r.has_root = true;
    r.bias = 0x555555554000;
    r.base_symbols["compute"] = {0x1140, 40, true};
    r.base_symbols["total_calls"] = {0x4010, 8, false};
    r.base_imports["printf"] = 0x3fd0;
  }
  return r;
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void expect_same(const Record& a, const Record& b) {
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.patch_id, b.patch_id);
  EXPECT_EQ(a.base_build_id, b.base_build_id);
  EXPECT_EQ(a.result_build_id, b.result_build_id);
  EXPECT_EQ(a.applied_at, b.applied_at);
  EXPECT_EQ(a.region_start, b.region_start);
  EXPECT_EQ(a.region_end, b.region_end);
  EXPECT_EQ(a.text_start, b.text_start);
  EXPECT_EQ(a.text_end, b.text_end);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(a.entries[i].identity, b.entries[i].identity);
    EXPECT_EQ(a.entries[i].address, b.entries[i].address);
    EXPECT_EQ(a.entries[i].old_bytes, b.entries[i].old_bytes);
    EXPECT_EQ(a.entries[i].new_bytes, b.entries[i].new_bytes);
    EXPECT_EQ(a.entries[i].continues, b.entries[i].continues);
  }
  ASSERT_EQ(a.defines.size(), b.defines.size());
  for (const auto& [name, d] : a.defines) {
    ASSERT_TRUE(b.defines.count(name)) << name;
    EXPECT_EQ(d.address, b.defines.at(name).address) << name;
    EXPECT_EQ(d.size, b.defines.at(name).size) << name;
    EXPECT_EQ(d.function, b.defines.at(name).function) << name;
  }
  EXPECT_EQ(a.has_root, b.has_root);
  EXPECT_EQ(a.bias, b.bias);
  ASSERT_EQ(a.base_symbols.size(), b.base_symbols.size());
  for (const auto& [name, s] : a.base_symbols) {
    ASSERT_TRUE(b.base_symbols.count(name)) << name;
    EXPECT_EQ(s.address, b.base_symbols.at(name).address) << name;
    EXPECT_EQ(s.size, b.base_symbols.at(name).size) << name;
    EXPECT_EQ(s.function, b.base_symbols.at(name).function) << name;
  }
  EXPECT_EQ(a.base_imports, b.base_imports);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.objects_transformed, b.objects_transformed);
  EXPECT_EQ(a.data.recorded, b.data.recorded);
  EXPECT_EQ(a.data.transformed, b.data.transformed);
  EXPECT_EQ(a.data.moved, b.data.moved);
  EXPECT_EQ(a.data.references, b.data.references);
  ASSERT_EQ(a.data.storage.size(), b.data.storage.size());
  for (size_t i = 0; i < a.data.storage.size(); ++i) {
    EXPECT_EQ(a.data.storage[i].identity, b.data.storage[i].identity);
    EXPECT_EQ(a.data.storage[i].from, b.data.storage[i].from);
    EXPECT_EQ(a.data.storage[i].to, b.data.storage[i].to);
    EXPECT_EQ(a.data.storage[i].writable, b.data.storage[i].writable);
  }
  EXPECT_EQ(a.data.user_transformers, b.data.user_transformers);
  EXPECT_EQ(a.data.inverse, b.data.inverse);
  EXPECT_EQ(a.data.irreversible, b.data.irreversible);
}

TEST(Registry, EveryFieldRoundTrips) {
  for (const bool root : {false, true}) {
    const Record record = sample(root);
    const std::string bytes = encode(record);
    ASSERT_GT(bytes.size(), kHeaderBytes);
    EXPECT_EQ(std::memcmp(bytes.data(), kMagic, 8), 0);
    auto length = json_length(as_bytes(bytes), 0x1000);
    ASSERT_TRUE(length) << length.error().message;
    EXPECT_EQ(*length, bytes.size() - kHeaderBytes);
    auto decoded = decode(as_bytes(bytes), 0x1000);
    ASSERT_TRUE(decoded) << decoded.error().message;
    expect_same(record, *decoded);
  }
}

// A record written before graft kept what a commit did to data still reads:
// only objects_transformed is known (a revert refuses it if nonzero).
TEST(Registry, ARecordWithoutItsDataWorkStillReads) {
  Record record = sample(true);
  record.data = DataWork{};
  const std::string bytes = encode(record);
  EXPECT_EQ(bytes.find("\"data\""), std::string::npos);
  auto decoded = decode(as_bytes(bytes), 0);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_FALSE(decoded->data.recorded);
  expect_same(record, *decoded);
}

// The commit marks a staged record applied by writing the state word alone, in place.
TEST(Registry, TheStateWordAloneMarksARecordApplied) {
  Record record = sample(true);
  record.state = Staged;
  std::string bytes = encode(record);
  EXPECT_EQ(decode(as_bytes(bytes), 0).value().state, Staged);
  const uint32_t applied = Applied;
  std::memcpy(bytes.data() + kStateOffset, &applied, 4);
  record.state = Applied;
  expect_same(record, decode(as_bytes(bytes), 0).value());
}

// Bytes a record may be followed by in its region (the header page's rest) are not read.
TEST(Registry, TrailingBytesAfterTheRecordAreIgnored) {
  const std::string bytes = encode(sample(false)) + std::string(100, '\0');
  auto decoded = decode(as_bytes(bytes), 0);
  ASSERT_TRUE(decoded) << decoded.error().message;
  expect_same(sample(false), *decoded);
}

TEST(Registry, MalformedRecordsAreRefusedNamingTheRegion) {
  const std::string good = encode(sample(true));
  auto refused = [](const std::string& bytes, const std::string& why) {
    auto decoded = decode(as_bytes(bytes), 0x7f0000000000);
    ASSERT_FALSE(decoded) << why;
    EXPECT_NE(decoded.error().message.find("graft region at 0x7f0000000000"), std::string::npos)
        << why << ": " << decoded.error().message;
  };
  std::string no_magic = good;
  no_magic[0] = 'X';
  refused(no_magic, "no magic");
  refused(good.substr(0, kHeaderBytes - 1), "a header cut short");
  refused(good.substr(0, good.size() - 1), "JSON cut short");
  std::string huge = good;
  const uint64_t length = 65u << 20;
  std::memcpy(huge.data() + 16, &length, 8);
  refused(huge, "a length past 64 MiB");
  std::string garbage = good;
  garbage[kHeaderBytes] = '[';
  refused(garbage, "not JSON");
  // Valid JSON without the fields of a record.
  const std::string text = R"({"sequence":1})";
  std::string missing = good.substr(0, kHeaderBytes) + text;
  const uint64_t text_length = text.size();
  std::memcpy(missing.data() + 16, &text_length, 8);
  refused(missing, "fields missing");
  EXPECT_FALSE(json_length(as_bytes(no_magic), 0));
}

}  // namespace
}  // namespace graft::registry
