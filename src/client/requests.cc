#include "client/requests.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>

namespace ballot::client {
namespace {

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

Result<int64_t> ParseInt(std::string_view text, int base, std::string_view what) {
  const std::string s(text);
  if (s.empty()) return Status::InvalidArgument(std::string(what) + ": empty number");
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(s.c_str(), &end, base);
  if (errno != 0 || end != s.c_str() + s.size()) {
    return Status::InvalidArgument(std::string(what) + ": \"" + s + "\" is not a " +
                                   (base == 16 ? "hexadecimal " : "") + "number");
  }
  return static_cast<int64_t>(value);
}

// Decodes the inside of a Go double-quoted string (strconv.Unquote) for the escapes people type.
Result<std::string> Unquote(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == body.size()) return Status::InvalidArgument("a quoted word ends in a backslash");
    switch (body[i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case '\'':
        out += '\'';
        break;
      case 'x': {
        if (i + 2 >= body.size())
          return Status::InvalidArgument("\\x needs two hexadecimal digits");
        ASSIGN_OR_RETURN(int64_t byte, ParseInt(body.substr(i + 1, 2), 16, "\\x escape"));
        out += static_cast<char>(byte);
        i += 2;
        break;
      }
      default:
        return Status::InvalidArgument(std::string("unknown escape \\") + body[i]);
    }
  }
  return out;
}

// Flags of one op: "--name", "--name=value" or "--name value" for the ones that take a value.
struct OpArgs {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
};

Result<OpArgs> SplitFlags(const std::vector<std::string>& words,
                          const std::vector<std::string_view>& valued,
                          const std::vector<std::string_view>& boolean) {
  OpArgs args;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.rfind("--", 0) != 0 || word.size() == 2) {
      args.positional.push_back(word);
      continue;
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const bool is_valued = std::find(valued.begin(), valued.end(), name) != valued.end();
    const bool is_boolean = std::find(boolean.begin(), boolean.end(), name) != boolean.end();
    if (!is_valued && !is_boolean) {
      return Status::InvalidArgument("unknown flag --" + name + " for " + words[0]);
    }
    if (is_valued && !has_value) {
      if (i + 1 == words.size())
        return Status::InvalidArgument("flag --" + name + " needs a value");
      value = words[++i];
    }
    if (is_boolean && has_value && value != "true" && value != "false") {
      return Status::InvalidArgument("flag --" + name + " takes true or false");
    }
    if (is_boolean && !has_value) value = "true";
    args.flags.emplace_back(name, value);
  }
  return args;
}

std::optional<std::string> Flag(const OpArgs& args, std::string_view name) {
  std::optional<std::string> found;
  for (const auto& [flag, value] : args.flags) {
    if (flag == name) found = value;
  }
  return found;
}

bool BoolFlag(const OpArgs& args, std::string_view name) { return Flag(args, name) == "true"; }

Result<etcdserverpb::RequestOp> ParsePut(const std::vector<std::string>& words) {
  ASSIGN_OR_RETURN(OpArgs args,
                   SplitFlags(words, {"lease"}, {"prev-kv", "ignore-value", "ignore-lease"}));
  const bool ignore_value = BoolFlag(args, "ignore-value");
  const size_t want = ignore_value ? 1 : 2;
  if (args.positional.size() != want) {
    return Status::InvalidArgument(ignore_value ? "put --ignore-value takes one argument (KEY)"
                                                : "put takes two arguments (KEY VALUE)");
  }
  etcdserverpb::RequestOp op;
  etcdserverpb::PutRequest* put = op.mutable_request_put();
  put->set_key(args.positional[0]);
  if (!ignore_value) put->set_value(args.positional[1]);
  put->set_ignore_value(ignore_value);
  put->set_prev_kv(BoolFlag(args, "prev-kv"));
  put->set_ignore_lease(BoolFlag(args, "ignore-lease"));
  if (auto lease = Flag(args, "lease")) {
    ASSIGN_OR_RETURN(int64_t id, ParseInt(*lease, 16, "--lease"));
    put->set_lease(id);
  }
  return op;
}

Result<etcdserverpb::RequestOp> ParseGet(const std::vector<std::string>& words) {
  ASSIGN_OR_RETURN(OpArgs args,
                   SplitFlags(words, {"limit", "rev"},
                              {"prefix", "from-key", "keys-only", "count-only", "serializable"}));
  if (args.positional.empty() || args.positional.size() > 2) {
    return Status::InvalidArgument("get takes KEY [RANGE_END]");
  }
  std::optional<std::string> end;
  if (args.positional.size() == 2) end = args.positional[1];
  ASSIGN_OR_RETURN(KeyRange range, MakeKeyRange(args.positional[0], end, BoolFlag(args, "prefix"),
                                                BoolFlag(args, "from-key")));
  etcdserverpb::RequestOp op;
  etcdserverpb::RangeRequest* get = op.mutable_request_range();
  get->set_key(range.key);
  get->set_range_end(range.range_end);
  if (auto limit = Flag(args, "limit")) {
    ASSIGN_OR_RETURN(int64_t n, ParseInt(*limit, 10, "--limit"));
    if (n < 0) return Status::InvalidArgument("--limit must not be negative");
    get->set_limit(n);
  }
  if (auto rev = Flag(args, "rev")) {
    ASSIGN_OR_RETURN(int64_t n, ParseInt(*rev, 10, "--rev"));
    if (n < 0) return Status::InvalidArgument("--rev must not be negative");
    get->set_revision(n);
  }
  get->set_keys_only(BoolFlag(args, "keys-only"));
  get->set_count_only(BoolFlag(args, "count-only"));
  get->set_serializable(BoolFlag(args, "serializable"));
  return op;
}

Result<etcdserverpb::RequestOp> ParseDel(const std::vector<std::string>& words) {
  ASSIGN_OR_RETURN(OpArgs args, SplitFlags(words, {}, {"prefix", "from-key", "prev-kv"}));
  if (args.positional.empty() || args.positional.size() > 2) {
    return Status::InvalidArgument("del takes KEY [RANGE_END]");
  }
  std::optional<std::string> end;
  if (args.positional.size() == 2) end = args.positional[1];
  ASSIGN_OR_RETURN(KeyRange range, MakeKeyRange(args.positional[0], end, BoolFlag(args, "prefix"),
                                                BoolFlag(args, "from-key")));
  etcdserverpb::RequestOp op;
  etcdserverpb::DeleteRangeRequest* del = op.mutable_request_delete_range();
  del->set_key(range.key);
  del->set_range_end(range.range_end);
  del->set_prev_kv(BoolFlag(args, "prev-kv"));
  return op;
}

}  // namespace

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

Result<KeyRange> MakeKeyRange(std::string key, std::optional<std::string> range_end, bool prefix,
                              bool from_key) {
  if (prefix && from_key)
    return Status::InvalidArgument("--prefix and --from-key exclude each other");
  if (range_end && (prefix || from_key)) {
    return Status::InvalidArgument("RANGE_END cannot be combined with --prefix or --from-key");
  }
  KeyRange range;
  range.key = std::move(key);
  if (prefix) {
    // An empty prefix means every key, as in etcd's WithPrefix.
    if (range.key.empty()) {
      range.key = std::string(1, '\0');
      range.range_end = std::string(1, '\0');
    } else {
      range.range_end = PrefixRangeEnd(range.key);
    }
  } else if (from_key) {
    if (range.key.empty()) range.key = std::string(1, '\0');
    range.range_end = std::string(1, '\0');
  } else if (range_end) {
    range.range_end = *range_end;
  }
  return range;
}

Result<std::vector<std::string>> SplitWords(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    if (line[i] == '"') {
      size_t j = i + 1;
      while (j < line.size() && line[j] != '"') j += (line[j] == '\\') ? 2 : 1;
      if (j >= line.size()) return Status::InvalidArgument("unterminated quote");
      ASSIGN_OR_RETURN(std::string word, Unquote(line.substr(i + 1, j - i - 1)));
      words.push_back(std::move(word));
      i = j + 1;
      continue;
    }
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    words.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return words;
}

Result<etcdserverpb::RequestOp> ParseRequestOp(std::string_view line) {
  ASSIGN_OR_RETURN(std::vector<std::string> words, SplitWords(line));
  if (words.empty()) return Status::InvalidArgument("empty op");
  if (words[0] == "put") return ParsePut(words);
  if (words[0] == "get") return ParseGet(words);
  if (words[0] == "del") return ParseDel(words);
  return Status::InvalidArgument("unknown op \"" + words[0] + "\" (expected put, get or del)");
}

Result<etcdserverpb::Compare> ParseCompare(std::string_view line) {
  const size_t paren = line.find('(');
  if (paren == std::string_view::npos) return Status::InvalidArgument("expected TARGET(\"KEY\")");
  const std::string_view target = Trim(line.substr(0, paren));
  std::string_view rest = Trim(line.substr(paren + 1));
  if (rest.empty() || rest[0] != '"') return Status::InvalidArgument("the key must be quoted");
  // The key is the quoted word right after "(", then ")".
  size_t close = 1;
  while (close < rest.size() && rest[close] != '"') close += (rest[close] == '\\') ? 2 : 1;
  if (close >= rest.size()) return Status::InvalidArgument("unterminated quote in the key");
  ASSIGN_OR_RETURN(std::string key, Unquote(rest.substr(1, close - 1)));
  rest = Trim(rest.substr(close + 1));
  if (rest.empty() || rest[0] != ')') return Status::InvalidArgument("expected ) after the key");
  ASSIGN_OR_RETURN(std::vector<std::string> words, SplitWords(rest.substr(1)));
  if (words.size() != 2) return Status::InvalidArgument("expected OP \"VALUE\" after the key");
  // The value must have been quoted in the line (etcdctl reads it with %q).
  if (Trim(rest.substr(1)).find('"') == std::string_view::npos) {
    return Status::InvalidArgument("the value must be quoted");
  }
  const std::string& op = words[0];
  const std::string& value = words[1];

  etcdserverpb::Compare compare;
  compare.set_key(key);
  if (op == "=") {
    compare.set_result(etcdserverpb::Compare::EQUAL);
  } else if (op == "!=") {
    compare.set_result(etcdserverpb::Compare::NOT_EQUAL);
  } else if (op == "<") {
    compare.set_result(etcdserverpb::Compare::LESS);
  } else if (op == ">") {
    compare.set_result(etcdserverpb::Compare::GREATER);
  } else {
    return Status::InvalidArgument("unknown comparison \"" + op + "\" (expected = != < >)");
  }
  if (target == "value" || target == "val") {
    compare.set_target(etcdserverpb::Compare::VALUE);
    compare.set_value(value);
  } else if (target == "version" || target == "ver") {
    compare.set_target(etcdserverpb::Compare::VERSION);
    ASSIGN_OR_RETURN(int64_t v, ParseInt(value, 10, "version"));
    compare.set_version(v);
  } else if (target == "create" || target == "c") {
    compare.set_target(etcdserverpb::Compare::CREATE);
    ASSIGN_OR_RETURN(int64_t v, ParseInt(value, 10, "create revision"));
    compare.set_create_revision(v);
  } else if (target == "mod" || target == "m") {
    compare.set_target(etcdserverpb::Compare::MOD);
    ASSIGN_OR_RETURN(int64_t v, ParseInt(value, 10, "mod revision"));
    compare.set_mod_revision(v);
  } else if (target == "lease") {
    compare.set_target(etcdserverpb::Compare::LEASE);
    ASSIGN_OR_RETURN(int64_t v, ParseInt(value, 16, "lease"));
    compare.set_lease(v);
  } else {
    return Status::InvalidArgument("unknown target \"" + std::string(target) +
                                   "\" (expected value, version, create, mod or lease)");
  }
  return compare;
}

Result<etcdserverpb::TxnRequest> ParseTxn(std::istream& in) {
  etcdserverpb::TxnRequest txn;
  int section = 0;  // 0 compares, 1 success ops, 2 failure ops
  std::string line;
  size_t line_number = 0;
  while (section < 3 && std::getline(in, line)) {
    ++line_number;
    const std::string_view trimmed = Trim(line);
    if (trimmed.empty()) {
      ++section;
      continue;
    }
    const auto where = [&](const Status& status) {
      return Status::InvalidArgument("line " + std::to_string(line_number) + " \"" +
                                     std::string(trimmed) + "\": " + status.message());
    };
    if (section == 0) {
      Result<etcdserverpb::Compare> compare = ParseCompare(trimmed);
      if (!compare.ok()) return where(compare.status());
      *txn.add_compare() = *std::move(compare);
    } else {
      Result<etcdserverpb::RequestOp> op = ParseRequestOp(trimmed);
      if (!op.ok()) return where(op.status());
      *(section == 1 ? txn.add_success() : txn.add_failure()) = *std::move(op);
    }
  }
  return txn;
}

}  // namespace ballot::client
