// URLs as etcd's flags take them: "http://127.0.0.1:2379,http://10.0.0.1:2379".
//
// etcd accepts a comma-separated list of URLs, each scheme://host:port with no path. Ballot speaks
// plain HTTP/2 only for now, so https (and unix sockets) are refused with a message that says so.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ballot::config {

struct Url {
  std::string scheme;  // "http"
  std::string host;    // "127.0.0.1", "localhost", "::1" (no brackets), or "" (every interface)
  uint16_t port = 0;

  // "http://127.0.0.1:2379", "http://[::1]:2379": the form etcd prints and compares.
  std::string ToString() const;
  // "127.0.0.1:2379", "[::1]:2379": the address part.
  std::string HostPort() const;
  friend bool operator==(const Url&, const Url&) = default;
};

// One URL. Errors (InvalidArgument) say what is wrong with `text`; https gets "TLS is not supported
// yet". A missing port is an error (etcd requires host:port).
Result<Url> ParseUrl(std::string_view text);

// A comma-separated list; surrounding spaces around each item are ignored, empty items are errors.
// At least one URL is required. Errors name `flag` (e.g. "--listen-client-urls").
Result<std::vector<Url>> ParseUrlList(std::string_view text, std::string_view flag);

// "http://a:1,http://b:2": the inverse of ParseUrlList.
std::string JoinUrls(const std::vector<Url>& urls);

// True when `host` is an IPv4 or IPv6 literal.
bool IsIpLiteral(std::string_view host);

// The address a gRPC server listens on for a listen URL: "127.0.0.1:2379", "0.0.0.0:2379" for an
// empty host, "[::1]:2379". "localhost" becomes "127.0.0.1": gRPC would otherwise try both
// 127.0.0.1 and ::1, and fail on machines without IPv6. Listen URLs must name an IP or localhost
// (etcd's rule: one binds to an address, not to a name); anything else is InvalidArgument.
Result<std::string> GrpcListenAddress(const Url& url);

// The address a client dials for an advertised URL: "host:port" (names are fine here).
std::string GrpcTarget(const Url& url);

}  // namespace ballot::config
