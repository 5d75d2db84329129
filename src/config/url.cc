#include "config/url.h"

#include <arpa/inet.h>

#include <charconv>

namespace ballot::config {
namespace {

constexpr size_t kUrlLengthMax = 1024;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status Bad(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid URL \"" + std::string(text) + "\": " + std::string(why));
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

std::string Url::HostPort() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::ToString() const { return scheme + "://" + HostPort(); }

bool IsIpLiteral(std::string_view host) {
  const std::string h(host);
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

Result<Url> ParseUrl(std::string_view text) {
  if (text.size() > kUrlLengthMax) return Bad(text.substr(0, 64), "longer than 1024 characters");
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    return Bad(text, "expected scheme://host:port, e.g. http://127.0.0.1:2379");
  }
  Url url;
  url.scheme = std::string(text.substr(0, sep));
  if (url.scheme == "https" || url.scheme == "unixs") {
    return Bad(text, "TLS is not supported yet: use http://");
  }
  if (url.scheme != "http") return Bad(text, "scheme must be http");
  std::string_view rest = text.substr(sep + 3);
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return Bad(text, "URL must not contain a path");
  }
  if (rest.find('@') != std::string_view::npos) return Bad(text, "URL must not contain user info");
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return Bad(text, "unclosed '[' in IPv6 address");
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return Bad(text, "expected :port after the host");
    port = rest.substr(1);
    if (!IsIpLiteral(host) || host.find(':') == std::string_view::npos) {
      return Bad(text, "not an IPv6 address inside [ ]");
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return Bad(text, "URL address does not have the form \"host:port\"");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    for (char c : host) {
      if (!IsHostChar(c)) return Bad(text, "invalid character in host");
    }
  }
  int port_value = -1;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_value < 0 ||
      port_value > 65535) {
    return Bad(text, "port must be a number from 0 to 65535");
  }
  url.host = std::string(host);
  url.port = static_cast<uint16_t>(port_value);
  return url;
}

Result<std::vector<Url>> ParseUrlList(std::string_view text, std::string_view flag) {
  std::vector<Url> urls;
  const std::string prefix = std::string(flag) + ": ";
  if (Trim(text).empty()) return Status::InvalidArgument(prefix + "at least one URL is required");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = Trim(text.substr(start, comma - start));
    if (item.empty()) return Status::InvalidArgument(prefix + "empty URL in list");
    Result<Url> url = ParseUrl(item);
    if (!url.ok()) return Status::InvalidArgument(prefix + url.status().message());
    urls.push_back(std::move(*url));
    start = comma + 1;
  }
  return urls;
}

std::string JoinUrls(const std::vector<Url>& urls) {
  std::string out;
  for (const Url& url : urls) {
    if (!out.empty()) out += ",";
    out += url.ToString();
  }
  return out;
}

Result<std::string> GrpcListenAddress(const Url& url) {
  if (url.host.empty()) return "0.0.0.0:" + std::to_string(url.port);
  if (url.host == "localhost") return "127.0.0.1:" + std::to_string(url.port);
  if (!IsIpLiteral(url.host)) {
    return Status::InvalidArgument("expected an IP address or localhost in a URL to listen on (" +
                                   url.ToString() + ")");
  }
  return url.HostPort();
}

std::string GrpcTarget(const Url& url) { return url.HostPort(); }

}  // namespace ballot::config
