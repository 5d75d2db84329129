#include <gtest/gtest.h>

#include "config/identity.h"

namespace ballot::config {
namespace {

std::string Hex(const std::array<uint8_t, 20>& digest) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

TEST(ConfigIdentity, Sha1KnownVectors) {
  EXPECT_EQ(Hex(Sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Hex(Sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // 56 bytes: the padding spills into a second block.
  EXPECT_EQ(Hex(Sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(Hex(Sha1(std::string(1000000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

ServeConfig MustResolve(ServeConfig config) {
  Result<ServeConfig> resolved = Resolve(std::move(config));
  EXPECT_TRUE(resolved.ok()) << resolved.status().ToString();
  return resolved.ok() ? *resolved : ServeConfig{};
}

// The ids etcd 3.4 gives a member started with no flags at all (well known from its logs).
TEST(ConfigIdentity, DefaultsMatchEtcd) {
  Result<InitialMembershipInfo> info = InitialMembership(MustResolve(ServeConfig{}));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(IdToHex(info->self_id), "8e9e05c52164694d");
  EXPECT_EQ(IdToHex(info->cluster_id), "cdf818194e3a8c32");
}

// Measured with /usr/bin/etcd 3.4.23: etcd --name a --initial-cluster-token tok-1
// --initial-cluster a=...:34380,b=...:34381,c=...:34382,c=...:34383 logged
// "added member 5fbb3a8679b0cd10 [http://127.0.0.1:34380] to cluster 127a597e0f685a6b" etc.
TEST(ConfigIdentity, ThreeMembersMatchEtcd) {
  ServeConfig config;
  config.name = "a";
  config.initial_cluster_token = "tok-1";
  config.initial_advertise_peer_urls = "http://127.0.0.1:34380";
  config.initial_cluster =
      "a=http://127.0.0.1:34380,b=http://127.0.0.1:34381,c=http://127.0.0.1:34382,"
      "c=http://127.0.0.1:34383";
  Result<InitialMembershipInfo> info = InitialMembership(MustResolve(config));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->members.size(), 3u);
  EXPECT_EQ(info->members[0].name, "a");
  EXPECT_EQ(IdToHex(info->members[0].id), "5fbb3a8679b0cd10");
  EXPECT_EQ(IdToHex(info->members[1].id), "a06592991fe1004");
  EXPECT_EQ(IdToHex(info->members[2].id), "30f346cf9988a522");
  EXPECT_EQ(info->members[2].peer_urls.size(), 2u);
  EXPECT_EQ(info->self_id, info->members[0].id);
  EXPECT_EQ(IdToHex(info->cluster_id), "127a597e0f685a6b");
}

TEST(ConfigIdentity, DeterministicAndSensitiveToInputs) {
  const std::vector<Url> urls = {{"http", "10.0.0.2", 2380}, {"http", "10.0.0.1", 2380}};
  const std::vector<Url> reversed = {urls[1], urls[0]};
  EXPECT_EQ(ComputeMemberId(urls, "t"), ComputeMemberId(reversed, "t"));  // Sorted first.
  EXPECT_NE(ComputeMemberId(urls, "t"), ComputeMemberId(urls, "u"));
  EXPECT_NE(ComputeMemberId({urls[0]}, "t"), ComputeMemberId(urls, "t"));
  EXPECT_EQ(ComputeClusterId({3, 1, 2}), ComputeClusterId({1, 2, 3}));
  EXPECT_NE(ComputeClusterId({1, 2, 3}), ComputeClusterId({1, 2, 4}));
}

TEST(ConfigIdentity, RequiresResolvedConfig) {
  Result<InitialMembershipInfo> info = InitialMembership(ServeConfig{});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kFailedPrecondition);
}

TEST(ConfigIdentity, HexHasNoLeadingZeros) {
  EXPECT_EQ(IdToHex(0x0a06592991fe1004ULL), "a06592991fe1004");
  EXPECT_EQ(IdToHex(0), "0");
}

}  // namespace
}  // namespace ballot::config
