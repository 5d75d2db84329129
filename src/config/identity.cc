#include "config/identity.h"

#include <algorithm>
#include <cstdio>

namespace ballot::config {
namespace {

uint32_t Rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void Sha1Block(const uint8_t* block, uint32_t h[5]) {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
           (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 80; ++i) w[i] = Rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f;
    uint32_t k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    const uint32_t t = Rotl(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = Rotl(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

uint64_t First8BigEndian(const std::array<uint8_t, 20>& digest) {
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i) out = (out << 8) | digest[i];
  return out;
}

}  // namespace

std::array<uint8_t, 20> Sha1(std::string_view data) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  // The message, a 0x80 byte, zeros to 56 mod 64, then the bit length big-endian.
  std::string padded(data);
  padded.push_back(static_cast<char>(0x80));
  while (padded.size() % 64 != 56) padded.push_back('\0');
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (int i = 7; i >= 0; --i) padded.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  for (size_t offset = 0; offset < padded.size(); offset += 64) {
    Sha1Block(reinterpret_cast<const uint8_t*>(padded.data() + offset), h);
  }
  std::array<uint8_t, 20> digest{};
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) digest[4 * i + j] = static_cast<uint8_t>(h[i] >> (24 - 8 * j));
  }
  return digest;
}

uint64_t ComputeMemberId(const std::vector<Url>& peer_urls, std::string_view cluster_token) {
  std::vector<std::string> urls;
  for (const Url& url : peer_urls) urls.push_back(url.ToString());
  std::sort(urls.begin(), urls.end());
  std::string input;
  for (const std::string& url : urls) input += url;
  input += cluster_token;
  return First8BigEndian(Sha1(input));
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string input;
  for (uint64_t id : member_ids) {
    for (int i = 7; i >= 0; --i) input.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  }
  return First8BigEndian(Sha1(input));
}

std::string IdToHex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  // etcd prints with %x (no leading zeros).
  std::string out(buf);
  const size_t first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

Result<InitialMembershipInfo> InitialMembership(const ServeConfig& config) {
  if (!config.resolved) return Status::FailedPrecondition("config not resolved (call Resolve)");
  InitialMembershipInfo info;
  std::vector<uint64_t> ids;
  for (const ClusterMember& member : config.parsed.initial_cluster) {
    const uint64_t id = ComputeMemberId(member.peer_urls, config.initial_cluster_token);
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
      return Status::InvalidArgument("--initial-cluster: member " + member.name +
                                     " has the same id as another member: " + IdToHex(id));
    }
    ids.push_back(id);
    info.members.push_back({member.name, id, member.peer_urls});
    if (member.name == config.name) info.self_id = id;
  }
  if (info.self_id == 0) {
    return Status::InvalidArgument("--initial-cluster: local name \"" + config.name +
                                   "\" not found");
  }
  info.cluster_id = ComputeClusterId(ids);
  return info;
}

}  // namespace ballot::config
