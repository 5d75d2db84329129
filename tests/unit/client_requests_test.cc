// The txn stdin parser and the key-range rules of the client commands (client/requests.h).
#include <gtest/gtest.h>

#include <sstream>

#include "client/requests.h"

namespace ballot::client {
namespace {

TEST(ClientRequests, PrefixRangeEndIncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixRangeEnd("/kv/"), "/kv0");
  EXPECT_EQ(PrefixRangeEnd("a"), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

TEST(ClientRequests, KeyRangeFromFlags) {
  Result<KeyRange> prefix = MakeKeyRange("/a/", std::nullopt, true, false);
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->key, "/a/");
  EXPECT_EQ(prefix->range_end, "/a0");

  Result<KeyRange> all = MakeKeyRange("", std::nullopt, true, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->key, std::string(1, '\0'));
  EXPECT_EQ(all->range_end, std::string(1, '\0'));

  Result<KeyRange> from = MakeKeyRange("k", std::nullopt, false, true);
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->key, "k");
  EXPECT_EQ(from->range_end, std::string(1, '\0'));

  Result<KeyRange> explicit_end = MakeKeyRange("a", "c", false, false);
  ASSERT_TRUE(explicit_end.ok());
  EXPECT_EQ(explicit_end->range_end, "c");

  Result<KeyRange> single = MakeKeyRange("a", std::nullopt, false, false);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->range_end, "");

  EXPECT_FALSE(MakeKeyRange("a", std::nullopt, true, true).ok());
  EXPECT_FALSE(MakeKeyRange("a", "b", true, false).ok());
}

TEST(ClientRequests, SplitWordsHonoursQuotesAndEscapes) {
  Result<std::vector<std::string>> words = SplitWords(R"(put  k1 "two words" "q\"uote" "a\x41\n")");
  ASSERT_TRUE(words.ok()) << words.status().ToString();
  EXPECT_EQ(*words, (std::vector<std::string>{"put", "k1", "two words", "q\"uote", "aA\n"}));
  EXPECT_FALSE(SplitWords(R"(put "unterminated)").ok());
  EXPECT_FALSE(SplitWords(R"(put "bad \q escape")").ok());
  EXPECT_FALSE(SplitWords(R"(put "short \x4")").ok());
}

TEST(ClientRequests, ParseCompareTargetsAndOperators) {
  Result<etcdserverpb::Compare> value = ParseCompare(R"(value("k") = "v 1")");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->target(), etcdserverpb::Compare::VALUE);
  EXPECT_EQ(value->result(), etcdserverpb::Compare::EQUAL);
  EXPECT_EQ(value->key(), "k");
  EXPECT_EQ(value->value(), "v 1");

  Result<etcdserverpb::Compare> version = ParseCompare(R"(ver("k") > "2")");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->target(), etcdserverpb::Compare::VERSION);
  EXPECT_EQ(version->result(), etcdserverpb::Compare::GREATER);
  EXPECT_EQ(version->version(), 2);

  Result<etcdserverpb::Compare> create = ParseCompare(R"(create("k") = "0")");
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->target(), etcdserverpb::Compare::CREATE);
  EXPECT_EQ(create->create_revision(), 0);

  Result<etcdserverpb::Compare> mod = ParseCompare(R"(m("k") != "17")");
  ASSERT_TRUE(mod.ok());
  EXPECT_EQ(mod->target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(mod->result(), etcdserverpb::Compare::NOT_EQUAL);
  EXPECT_EQ(mod->mod_revision(), 17);

  Result<etcdserverpb::Compare> lease = ParseCompare(R"(lease("k") < "ff")");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->target(), etcdserverpb::Compare::LEASE);
  EXPECT_EQ(lease->result(), etcdserverpb::Compare::LESS);
  EXPECT_EQ(lease->lease(), 255);
}

TEST(ClientRequests, ParseCompareRejectsMalformedLines) {
  EXPECT_FALSE(ParseCompare(R"(value"k" = "v")").ok());        // no parenthesis
  EXPECT_FALSE(ParseCompare(R"(value(k) = "v")").ok());        // key not quoted
  EXPECT_FALSE(ParseCompare(R"(value("k") = v)").ok());        // value not quoted
  EXPECT_FALSE(ParseCompare(R"(value("k") >= "v")").ok());     // unknown operator
  EXPECT_FALSE(ParseCompare(R"(size("k") = "1")").ok());       // unknown target
  EXPECT_FALSE(ParseCompare(R"(version("k") = "one")").ok());  // not a number
  EXPECT_FALSE(ParseCompare(R"(value("k") = "v" extra)").ok());
}

TEST(ClientRequests, ParseRequestOps) {
  Result<etcdserverpb::RequestOp> put = ParseRequestOp(R"(put k "v w" --lease=1f --prev-kv)");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_TRUE(put->has_request_put());
  EXPECT_EQ(put->request_put().key(), "k");
  EXPECT_EQ(put->request_put().value(), "v w");
  EXPECT_EQ(put->request_put().lease(), 31);
  EXPECT_TRUE(put->request_put().prev_kv());

  Result<etcdserverpb::RequestOp> get = ParseRequestOp("get /p/ --prefix --limit 3 --keys-only");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  ASSERT_TRUE(get->has_request_range());
  EXPECT_EQ(get->request_range().key(), "/p/");
  EXPECT_EQ(get->request_range().range_end(), "/p0");
  EXPECT_EQ(get->request_range().limit(), 3);
  EXPECT_TRUE(get->request_range().keys_only());

  Result<etcdserverpb::RequestOp> get_range = ParseRequestOp("get a c --rev=5");
  ASSERT_TRUE(get_range.ok());
  EXPECT_EQ(get_range->request_range().range_end(), "c");
  EXPECT_EQ(get_range->request_range().revision(), 5);

  Result<etcdserverpb::RequestOp> del = ParseRequestOp("del k --from-key --prev-kv");
  ASSERT_TRUE(del.ok());
  ASSERT_TRUE(del->has_request_delete_range());
  EXPECT_EQ(del->request_delete_range().range_end(), std::string(1, '\0'));
  EXPECT_TRUE(del->request_delete_range().prev_kv());
}

TEST(ClientRequests, ParseRequestOpRejectsBadOps) {
  EXPECT_FALSE(ParseRequestOp("put onlykey").ok());
  EXPECT_FALSE(ParseRequestOp("put k v extra").ok());
  EXPECT_FALSE(ParseRequestOp("put k v --lease=xyz").ok());
  EXPECT_FALSE(ParseRequestOp("put k v --lease").ok());
  EXPECT_FALSE(ParseRequestOp("get k --limit=-1").ok());
  EXPECT_FALSE(ParseRequestOp("get k --nonsense").ok());
  EXPECT_FALSE(ParseRequestOp("get").ok());
  EXPECT_FALSE(ParseRequestOp("watch k").ok());
  EXPECT_FALSE(ParseRequestOp("del a b --prefix").ok());
}

TEST(ClientRequests, ParseTxnReadsThreeSections) {
  std::istringstream in(
      "value(\"a\") = \"1\"\n"
      "  version(\"b\") > \"0\"  \n"
      "\n"
      "put a \"10\"\n"
      "get b\n"
      "\n"
      "del c\n"
      "\n"
      "put ignored after the end\n");
  Result<etcdserverpb::TxnRequest> txn = ParseTxn(in);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  ASSERT_EQ(txn->compare_size(), 2);
  EXPECT_EQ(txn->compare(1).key(), "b");
  ASSERT_EQ(txn->success_size(), 2);
  EXPECT_EQ(txn->success(0).request_put().value(), "10");
  EXPECT_TRUE(txn->success(1).has_request_range());
  ASSERT_EQ(txn->failure_size(), 1);
  EXPECT_EQ(txn->failure(0).request_delete_range().key(), "c");
}

TEST(ClientRequests, ParseTxnEndsSectionsAtEndOfInput) {
  std::istringstream no_compares("\nput a b\n");
  Result<etcdserverpb::TxnRequest> txn = ParseTxn(no_compares);
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(txn->compare_size(), 0);
  EXPECT_EQ(txn->success_size(), 1);
  EXPECT_EQ(txn->failure_size(), 0);
}

TEST(ClientRequests, ParseTxnNamesTheBadLine) {
  std::istringstream in("value(\"a\") = \"1\"\n\nput a\n\n");
  Result<etcdserverpb::TxnRequest> txn = ParseTxn(in);
  ASSERT_FALSE(txn.ok());
  EXPECT_NE(txn.status().message().find("line 3"), std::string::npos) << txn.status().message();
  EXPECT_NE(txn.status().message().find("put a"), std::string::npos);

  std::istringstream bad_compare("mod(\"a\") = \"x\"\n\n");
  EXPECT_FALSE(ParseTxn(bad_compare).ok());
}

}  // namespace
}  // namespace ballot::client
