// The patch file format: what is written reads back identically, and what is
// malformed is refused with a reason before anything trusts it.
#include <elf.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "../support/harness.h"
#include "patch/patch.h"

namespace graft {
namespace {

Patch sample() {
  Patch p;
  p.manifest.base_build_id = "aaaa";
  p.manifest.result_build_id = "bbbb";
  p.manifest.patch_id = "0123456789abcdef";
  p.manifest.base_symbols["compute"] = {0x1140, 40, true};
  p.manifest.base_imports["printf"] = 0x3fd0;
  PatchPiece text{".text.compute", PieceKind::Text, 16, 32, std::vector<uint8_t>(32, 0x90), {}};
  text.relocations.push_back({20, R_X86_64_PLT32, 1, -4});
  p.pieces.push_back(text);
  p.pieces.push_back({".bss.counter", PieceKind::Bss, 4, 4, {}, {}});
  p.symbols.push_back({"compute", 0, 14, 18, true});
  p.symbols.push_back({"printf", -1, 0, 0, false});
  p.symbols.push_back({"counter", 1, 0, 4, false});
  p.manifest.functions.push_back({"compute", "its machine code changed", 0, true, {true, "", {{9, 9}}, {}, {}, {}}});
  return p;
}

class PatchFormat : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path file = dir.path() / "p.graft";
  std::vector<uint8_t> bytes() {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

TEST_F(PatchFormat, RoundTrip) {
  ASSERT_TRUE(write_patch(sample(), file));
  auto read = read_patch(file);
  ASSERT_TRUE(read) << read.error().message;
  const Patch& p = *read;
  EXPECT_EQ(p.manifest.patch_id, "0123456789abcdef");
  EXPECT_EQ(p.manifest.base_symbols.at("compute").address, 0x1140u);
  EXPECT_EQ(p.manifest.base_imports.at("printf"), 0x3fd0u);
  ASSERT_EQ(p.pieces.size(), 2u);
  EXPECT_EQ(p.pieces[0].kind, PieceKind::Text);
  EXPECT_EQ(p.pieces[1].kind, PieceKind::Bss);
  EXPECT_EQ(p.pieces[1].size, 4u);
  ASSERT_EQ(p.pieces[0].relocations.size(), 1u);
  EXPECT_EQ(p.pieces[0].relocations[0].type, static_cast<uint32_t>(R_X86_64_PLT32));
  EXPECT_EQ(p.symbols[p.pieces[0].relocations[0].symbol].name, "printf");
  EXPECT_EQ(p.symbols[0].offset, 14u);
  EXPECT_TRUE(p.symbols[0].function);
  ASSERT_EQ(p.manifest.functions.size(), 1u);
  const Continuation& c = p.manifest.functions[0].continuation;
  EXPECT_TRUE(c.continuable);
  ASSERT_EQ(c.returns.size(), 1u);
  EXPECT_EQ(c.returns[0], std::make_pair(uint64_t{9}, uint64_t{9}));
}

TEST_F(PatchFormat, ContinuationIsInTheContentIdAndValidated) {
  // Where frames continue is applied to live stacks: a changed map is a changed patch.
  Patch moved = sample();
  moved.manifest.functions[0].continuation.returns[0].second = 7;
  EXPECT_NE(patch_content_id(moved), patch_content_id(sample()));

  Patch outside = sample();
  outside.manifest.functions[0].continuation.returns[0] = {9, 19};  // past the 18-byte function
  ASSERT_TRUE(write_patch(outside, file));
  auto r = read_patch(file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("outside its code"), std::string::npos) << r.error().message;

  Patch not_continuable = sample();
  not_continuable.manifest.functions[0].continuation.continuable = false;
  ASSERT_TRUE(write_patch(not_continuable, file));
  r = read_patch(file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not continuable"), std::string::npos) << r.error().message;
}

// Update-time code: an init of a global the patch adds, a rerun of a base
// function, the runner; read back in order, part of the content id, checked.
Patch with_update_code() {
  Patch p = sample();
  p.symbols.push_back({"graft_update_run", 0, 0, 8, true});
  p.symbols.push_back({"graft_init__counter", 0, 8, 6, true});
  p.manifest.added_data.push_back("counter");
  p.manifest.update_code = {{{"counter", "graft_init__counter"}}, {"compute"}, "", "", "graft_update_run", "init.c"};
  return p;
}

TEST_F(PatchFormat, UpdateCodeRoundTripsIsInTheContentIdAndValidated) {
  ASSERT_TRUE(write_patch(with_update_code(), file));
  auto read = read_patch(file);
  ASSERT_TRUE(read) << read.error().message;
  const UpdateCode& u = read->manifest.update_code;
  ASSERT_EQ(u.inits.size(), 1u);
  EXPECT_EQ(u.inits[0].global, "counter");
  EXPECT_EQ(u.inits[0].function, "graft_init__counter");
  EXPECT_EQ(u.reruns, std::vector<std::string>{"compute"});
  EXPECT_EQ(u.runner, "graft_update_run");
  EXPECT_EQ(u.file, "init.c");
  EXPECT_EQ(u.initialised_globals(), std::set<std::string>{"counter"});

  Patch other = with_update_code();
  other.manifest.update_code.inits[0].global = "compute";
  EXPECT_NE(patch_content_id(other), patch_content_id(with_update_code()));

  auto refused = [&](Patch p) {
    EXPECT_TRUE(write_patch(p, file));
    auto r = read_patch(file);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };
  Patch kept = with_update_code();
  kept.manifest.added_data.clear();  // the global is not one the patch adds
  EXPECT_NE(refused(kept).find("initialises counter, which the patch does not add"), std::string::npos);
  Patch unknown = with_update_code();
  unknown.manifest.update_code.reruns = {"nosuch"};
  EXPECT_NE(refused(unknown).find("re-runs nosuch, which neither the patch nor the base binary defines"),
            std::string::npos);
  Patch no_runner = with_update_code();
  no_runner.manifest.update_code.runner = "missing";
  EXPECT_NE(refused(no_runner).find("has no runner"), std::string::npos);
}

TEST_F(PatchFormat, EveryTruncationIsRefused) {
  ASSERT_TRUE(write_patch(sample(), file));
  const auto whole = bytes();
  for (size_t size = 0; size < whole.size(); size += 7) {
    auto r = parse_patch({whole.begin(), whole.begin() + static_cast<long>(size)}, "cut");
    EXPECT_FALSE(r) << "a patch cut to " << size << " of " << whole.size() << " bytes was accepted";
  }
}

TEST_F(PatchFormat, EveryFlippedCodeByteIsRefused) {
  ASSERT_TRUE(write_patch(sample(), file));
  const auto whole = bytes();
  auto parsed = read_patch(file);
  ASSERT_TRUE(parsed);
  // Find the code in the file and flip each byte in turn.
  auto at = std::search(whole.begin(), whole.end(), parsed->pieces[0].bytes.begin(), parsed->pieces[0].bytes.end());
  ASSERT_NE(at, whole.end());
  for (size_t i = 0; i < 32; ++i) {
    auto copy = whole;
    copy[static_cast<size_t>(at - whole.begin()) + i] ^= 1;
    auto r = parse_patch(copy, "flipped");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("its digest does not match its contents"), std::string::npos) << r.error().message;
  }
}

TEST_F(PatchFormat, StructuralErrorsAreNamed) {
  Patch bad_offset = sample();
  bad_offset.pieces[0].relocations[0].offset = 30;  // a 4-byte field past the 32-byte piece
  ASSERT_TRUE(write_patch(bad_offset, file));
  auto r = read_patch(file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("relocation outside"), std::string::npos) << r.error().message;

  Patch tls = sample();
  tls.pieces[0].relocations[0].type = R_X86_64_TLSGD;  // general-dynamic: not patched
  ASSERT_TRUE(write_patch(tls, file));
  r = read_patch(file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unsupported relocation"), std::string::npos) << r.error().message;

  Patch future = sample();
  future.manifest.format_version = 99;
  ASSERT_TRUE(write_patch(future, file));
  r = read_patch(file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("version 99 is not supported"), std::string::npos) << r.error().message;
}

// The seal covers every byte: a change anywhere in the file, the seal
// included, is refused before anything of the patch is read.
TEST_F(PatchFormat, EveryFlippedByteIsRefused) {
  ASSERT_TRUE(write_patch(sample(), file));
  const auto whole = bytes();
  ASSERT_TRUE(parse_patch(whole, "whole"));
  for (size_t at = 0; at < whole.size(); ++at) {
    auto copy = whole;
    copy[at] ^= 0x01;
    auto r = parse_patch(copy, "flipped");
    ASSERT_FALSE(r) << "flipping byte " << at << " of " << whole.size() << " was accepted";
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
  }
}

TEST_F(PatchFormat, SignedPatchesCarryTheirSignerAndEverySignatureByteCounts) {
  test::TempDir keys;
  auto pair = crypto::generate_key_pair(keys.path(), "test");
  ASSERT_TRUE(pair) << pair.error().message;
  auto secret = crypto::load_secret_key(pair->secret);
  ASSERT_TRUE(secret) << secret.error().message;
  ASSERT_TRUE(write_patch(sample(), file, &*secret));
  auto read = read_patch(file);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_TRUE(read->signer);
  EXPECT_EQ(*read->signer, pair->key);
  const auto whole = bytes();
  for (size_t at = whole.size() - 96; at < whole.size(); ++at) {  // the key and the signature
    auto copy = whole;
    copy[at] ^= 0x80;
    auto r = parse_patch(copy, "flipped");
    ASSERT_FALSE(r) << at;
    EXPECT_NE(r.error().message.find("signature does not verify"), std::string::npos) << r.error().message;
  }
  ASSERT_TRUE(write_patch(sample(), file));
  auto unsigned_read = read_patch(file);
  ASSERT_TRUE(unsigned_read);
  EXPECT_FALSE(unsigned_read->signer);
  // A second keygen into the same place never replaces the key.
  auto again = crypto::generate_key_pair(keys.path(), "test");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos) << again.error().message;
}

TEST_F(PatchFormat, OlderFormatsAreRefusedWithWhatToDo) {
  Patch old = sample();
  old.manifest.format_version = 3;
  ASSERT_TRUE(write_patch(old, file));
  auto image = bytes();
  image.resize(image.size() - kPatchSealBytes);  // format 3 had no seal
  auto r = parse_patch(image, "old.graft");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("patch format version 3 is older than this graft reads (4)"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("re-run graft diff"), std::string::npos) << r.error().message;
}

// Numbers in a manifest are integers: a fraction (1e300 would overflow the
// integer it becomes) is refused, not converted.
TEST_F(PatchFormat, AFractionInTheManifestIsRefused) {
  ASSERT_TRUE(write_patch(sample(), file));
  auto image = bytes();
  image.resize(image.size() - kPatchSealBytes);
  const std::string address = "4416";  // compute's base address, 0x1140
  auto at = std::search(image.begin(), image.end(), address.begin(), address.end());
  ASSERT_NE(at, image.end());
  at[1] = 'e';  // 4e16: the same length, a floating-point number
  auto r = parse_patch(seal_patch_image(image), "fraction");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("a number that is not an integer"), std::string::npos) << r.error().message;
}

}  // namespace
// The diff keeps only transfers the reader accepts: one predicate for both.
TEST(FrameTransfers, WhatTheReaderRefusesIsNamed) {
  FrameTransfer t;
  t.old_return = 0x10;
  t.new_return = 0x20;
  t.old_frame = t.new_frame = 32;
  TransferMove move;
  move.from.kind = TransferValue::Kind::Register;
  move.from.reg = 3;
  move.to.kind = TransferValue::Kind::Frame;
  move.to.offset = -16;
  move.size = 8;
  t.moves.push_back(move);
  EXPECT_EQ(malformed_transfer(t, 0x40), "");
  EXPECT_NE(malformed_transfer(t, 0x20), "");  // the new return past the code
  t.moves[0].from.reg = 17;                      // a vector register (DWARF 17: xmm0)
  EXPECT_EQ(malformed_transfer(t, 0x40), "a move from a register that is not a general one");
  t.moves[0].from.reg = 3;
  t.moves[0].size = 0;
  EXPECT_EQ(malformed_transfer(t, 0x40), "a move of 0 bytes");
}

}  // namespace graft
