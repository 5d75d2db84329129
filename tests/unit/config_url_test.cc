#include <gtest/gtest.h>

#include "config/url.h"

namespace ballot::config {
namespace {

TEST(ConfigUrl, ParsesAList) {
  Result<std::vector<Url>> urls =
      ParseUrlList("http://127.0.0.1:2379, http://10.0.0.1:22379", "--listen-client-urls");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  ASSERT_EQ(urls->size(), 2u);
  EXPECT_EQ((*urls)[0], (Url{"http", "127.0.0.1", 2379}));
  EXPECT_EQ((*urls)[1], (Url{"http", "10.0.0.1", 22379}));
  EXPECT_EQ(JoinUrls(*urls), "http://127.0.0.1:2379,http://10.0.0.1:22379");
}

TEST(ConfigUrl, Ipv6AndNames) {
  Result<Url> v6 = ParseUrl("http://[::1]:2380");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "http://[::1]:2380");
  Result<Url> name = ParseUrl("http://infra0.example.com:2380");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "infra0.example.com");
  Result<Url> any = ParseUrl("http://:2379");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
}

void ExpectBad(std::string_view text, std::string_view needle) {
  Result<Url> url = ParseUrl(text);
  ASSERT_FALSE(url.ok()) << text;
  EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(url.status().message().find(needle), std::string::npos)
      << text << " -> " << url.status().message();
}

TEST(ConfigUrl, RejectsMalformed) {
  ExpectBad("https://127.0.0.1:2379", "TLS is not supported yet");
  ExpectBad("unixs://x:1", "TLS is not supported yet");
  ExpectBad("127.0.0.1:2379", "scheme://host:port");
  ExpectBad("ftp://127.0.0.1:2379", "scheme must be http");
  ExpectBad("http://127.0.0.1", "host:port");
  ExpectBad("http://127.0.0.1:2379/v3", "path");
  ExpectBad("http://127.0.0.1:70000", "port");
  ExpectBad("http://127.0.0.1:", "port");
  ExpectBad("http://127.0.0.1:12ab", "port");
  ExpectBad("http://[::1:2380", "unclosed");
  ExpectBad("http://[nothex]:2380", "IPv6");
  ExpectBad("http://user@host:1", "user info");
  ExpectBad("http://ho st:1", "invalid character");
  ExpectBad(std::string(2000, 'x'), "longer than");
}

TEST(ConfigUrl, ListErrorsNameTheFlag) {
  for (std::string_view text :
       {"", "http://a:1,", "http://a:1,,http://b:2", "http://a:1,https://b:2"}) {
    Result<std::vector<Url>> urls = ParseUrlList(text, "--listen-peer-urls");
    ASSERT_FALSE(urls.ok()) << text;
    EXPECT_EQ(urls.status().message().rfind("--listen-peer-urls: ", 0), 0u)
        << urls.status().message();
  }
}

TEST(ConfigUrl, GrpcListenAddresses) {
  EXPECT_EQ(*GrpcListenAddress({"http", "127.0.0.1", 2379}), "127.0.0.1:2379");
  EXPECT_EQ(*GrpcListenAddress({"http", "0.0.0.0", 2379}), "0.0.0.0:2379");
  EXPECT_EQ(*GrpcListenAddress({"http", "", 2379}), "0.0.0.0:2379");
  EXPECT_EQ(*GrpcListenAddress({"http", "localhost", 2379}), "127.0.0.1:2379");
  EXPECT_EQ(*GrpcListenAddress({"http", "::1", 2379}), "[::1]:2379");
  Result<std::string> name = GrpcListenAddress({"http", "example.com", 2379});
  ASSERT_FALSE(name.ok());
  EXPECT_NE(name.status().message().find("IP address or localhost"), std::string::npos);
  EXPECT_EQ(GrpcTarget({"http", "example.com", 2379}), "example.com:2379");
}

TEST(ConfigUrl, IpLiterals) {
  EXPECT_TRUE(IsIpLiteral("10.1.2.3"));
  EXPECT_TRUE(IsIpLiteral("fe80::1"));
  EXPECT_FALSE(IsIpLiteral("localhost"));
  EXPECT_FALSE(IsIpLiteral("10.1.2"));
}

}  // namespace
}  // namespace ballot::config
