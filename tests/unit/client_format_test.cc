// The client commands' output formats and flag parsing (client/format.h), checked against what
// etcdctl 3.4 prints for the same responses.
#include <gtest/gtest.h>

#include "client/client.h"
#include "client/format.h"

namespace ballot::client {
namespace {

mvccpb::KeyValue Kv(const std::string& key, const std::string& value) {
  mvccpb::KeyValue kv;
  kv.set_key(key);
  kv.set_value(value);
  return kv;
}

TEST(ClientFormat, ParseDuration) {
  EXPECT_EQ(ParseDuration("5s").value(), std::chrono::milliseconds(5000));
  EXPECT_EQ(ParseDuration("500ms").value(), std::chrono::milliseconds(500));
  EXPECT_EQ(ParseDuration("1m30s").value(), std::chrono::milliseconds(90'000));
  EXPECT_EQ(ParseDuration("1.5s").value(), std::chrono::milliseconds(1500));
  EXPECT_EQ(ParseDuration("2h").value(), std::chrono::milliseconds(7'200'000));
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("5").ok());
  EXPECT_FALSE(ParseDuration("s").ok());
  EXPECT_FALSE(ParseDuration("5 s").ok());
  EXPECT_FALSE(ParseDuration("0s").ok());
  EXPECT_FALSE(ParseDuration("3days").ok());
}

TEST(ClientFormat, EndpointsAndTargets) {
  EXPECT_EQ(SplitEndpoints("a:1,b:2").value(), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_FALSE(SplitEndpoints("a:1,,b:2").ok());
  EXPECT_FALSE(SplitEndpoints("").ok());
  EXPECT_EQ(EndpointTarget("127.0.0.1:2379").value(), "127.0.0.1:2379");
  EXPECT_EQ(EndpointTarget("http://127.0.0.1:2379/").value(), "127.0.0.1:2379");
  EXPECT_FALSE(EndpointTarget("https://127.0.0.1:2379").ok());
  EXPECT_FALSE(EndpointTarget("127.0.0.1").ok());
  EXPECT_FALSE(EndpointTarget("127.0.0.1:").ok());
  EXPECT_FALSE(EndpointTarget("host:port").ok());
}

TEST(ClientFormat, GetPrintsKeyThenValue) {
  etcdserverpb::RangeResponse response;
  *response.add_kvs() = Kv("/a", "1");
  *response.add_kvs() = Kv("/b", "");  // as with --keys-only: an empty value line
  EXPECT_EQ(FormatGet(response), "/a\n1\n/b\n\n");
  EXPECT_EQ(FormatGet(response, {.print_value_only = true}), "1\n\n");
  EXPECT_EQ(FormatGet(etcdserverpb::RangeResponse()), "");
}

TEST(ClientFormat, GetJsonMatchesEtcdctl) {
  // etcdctl 3.4 printed exactly this for the same response (base64 keys and values, zero fields
  // left out, header first).
  etcdserverpb::RangeResponse response;
  response.mutable_header()->set_cluster_id(12540954195705465972ull);
  response.mutable_header()->set_member_id(6062918944366119620ull);
  response.mutable_header()->set_revision(5301);
  response.mutable_header()->set_raft_term(2);
  mvccpb::KeyValue* kv = response.add_kvs();
  kv->set_key("/b/a");
  kv->set_create_revision(5300);
  kv->set_mod_revision(5301);
  kv->set_version(2);
  kv->set_value("2");
  response.set_count(1);
  EXPECT_EQ(FormatGetJson(response),
            R"({"header":{"cluster_id":12540954195705465972,"member_id":6062918944366119620,)"
            R"("revision":5301,"raft_term":2},"kvs":[{"key":"L2IvYQ==","create_revision":5300,)"
            R"("mod_revision":5301,"version":2,"value":"Mg=="}],"count":1})"
            "\n");
}

TEST(ClientFormat, PutDeleteAndTxn) {
  etcdserverpb::PutResponse put;
  EXPECT_EQ(FormatPut(put), "OK\n");
  *put.mutable_prev_kv() = Kv("k", "old");
  EXPECT_EQ(FormatPut(put), "OK\nk\nold\n");

  etcdserverpb::DeleteRangeResponse del;
  del.set_deleted(2);
  *del.add_prev_kvs() = Kv("a", "1");
  EXPECT_EQ(FormatDelete(del), "2\na\n1\n");

  etcdserverpb::TxnResponse txn;
  txn.set_succeeded(true);
  txn.add_responses()->mutable_response_put();
  *txn.add_responses()->mutable_response_range()->add_kvs() = Kv("/txn/b", "2");
  EXPECT_EQ(FormatTxn(txn), "SUCCESS\n\nOK\n\n/txn/b\n2\n");
  txn.set_succeeded(false);
  txn.clear_responses();
  txn.add_responses()->mutable_response_delete_range()->set_deleted(1);
  EXPECT_EQ(FormatTxn(txn), "FAILURE\n\n1\n");
}

TEST(ClientFormat, WatchEvents) {
  mvccpb::Event put;
  put.set_type(mvccpb::Event::PUT);
  *put.mutable_kv() = Kv("k", "v2");
  EXPECT_EQ(FormatWatchEvent(put), "PUT\nk\nv2\n");
  *put.mutable_prev_kv() = Kv("k", "v1");
  EXPECT_EQ(FormatWatchEvent(put), "PUT\nk\nv1\nk\nv2\n");
  mvccpb::Event del;
  del.set_type(mvccpb::Event::DELETE);
  *del.mutable_kv() = Kv("k", "");
  EXPECT_EQ(FormatWatchEvent(del), "DELETE\nk\n\n");
}

TEST(ClientFormat, Leases) {
  etcdserverpb::LeaseGrantResponse grant;
  grant.set_id(0x694d7b0d0b2a1c0a);
  grant.set_ttl(60);
  EXPECT_EQ(FormatLeaseGrant(grant), "lease 694d7b0d0b2a1c0a granted with TTL(60s)\n");
  EXPECT_EQ(FormatLeaseId(0x1f), "000000000000001f");
  EXPECT_EQ(FormatLeaseRevoke(0x1f), "lease 000000000000001f revoked\n");

  etcdserverpb::LeaseKeepAliveResponse keep;
  keep.set_id(0x1f);
  keep.set_ttl(60);
  EXPECT_EQ(FormatLeaseKeepAlive(keep), "lease 000000000000001f keepalived with TTL(60)\n");

  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ttl.set_id(0x1f);
  ttl.set_grantedttl(60);
  ttl.set_ttl(58);
  EXPECT_EQ(FormatLeaseTimeToLive(ttl),
            "lease 000000000000001f granted with TTL(60s), remaining(58s)\n");
  ttl.add_keys("/a");
  ttl.add_keys("/b");
  EXPECT_EQ(FormatLeaseTimeToLive(ttl),
            "lease 000000000000001f granted with TTL(60s), remaining(58s), attached keys([/a "
            "/b])\n");
  etcdserverpb::LeaseTimeToLiveResponse expired;
  expired.set_id(0x1f);
  expired.set_ttl(-1);
  EXPECT_EQ(FormatLeaseTimeToLive(expired), "lease 000000000000001f already expired\n");

  etcdserverpb::LeaseLeasesResponse list;
  list.add_leases()->set_id(0x1f);
  EXPECT_EQ(FormatLeaseList(list), "found 1 leases\n000000000000001f\n");
}

TEST(ClientFormat, Members) {
  etcdserverpb::MemberListResponse list;
  etcdserverpb::Member* started = list.add_members();
  started->set_id(0x8e9e05c52164694d);
  started->set_name("m1");
  started->add_peerurls("http://127.0.0.1:2380");
  started->add_clienturls("http://127.0.0.1:2379");
  etcdserverpb::Member* learner = list.add_members();
  learner->set_id(0x12);
  learner->add_peerurls("http://127.0.0.1:2382");
  learner->set_islearner(true);
  EXPECT_EQ(FormatMemberList(list),
            "8e9e05c52164694d, started, m1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n"
            "12, unstarted, , http://127.0.0.1:2382, , true\n");

  etcdserverpb::MemberAddResponse add;
  add.mutable_header()->set_cluster_id(0xae0a6b656b780c74);
  add.mutable_member()->set_id(0x128754df9d8bf002);
  add.mutable_member()->add_peerurls("http://127.0.0.1:32993");
  *add.add_members() = add.member();
  etcdserverpb::Member* old = add.add_members();
  old->set_name("x");
  old->add_peerurls("http://127.0.0.1:32991");
  // etcdctl 3.4's output for the same addition.
  EXPECT_EQ(FormatMemberAdd(add, "m4"),
            "Member 128754df9d8bf002 added to cluster ae0a6b656b780c74\n"
            "\n"
            "ETCD_NAME=\"m4\"\n"
            "ETCD_INITIAL_CLUSTER=\"m4=http://127.0.0.1:32993,x=http://127.0.0.1:32991\"\n"
            "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:32993\"\n"
            "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
}

TEST(ClientFormat, StatusTableSimpleAndJson) {
  EndpointStatus ok;
  ok.endpoint = "127.0.0.1:32990";
  ok.status.mutable_header()->set_member_id(0x5423d0a83cedcac4);
  ok.status.set_leader(0x5423d0a83cedcac4);
  ok.status.set_version("3.4.23");
  ok.status.set_dbsize(20480);
  ok.status.set_raftterm(2);
  ok.status.set_raftindex(15);
  ok.status.set_raftappliedindex(15);
  EndpointStatus down;
  down.endpoint = "127.0.0.1:1";
  down.error = Status::Unavailable("refused");

  EXPECT_EQ(FormatStatusSimple({ok}),
            "127.0.0.1:32990, 5423d0a83cedcac4, 3.4.23, 20 kB, true, false, 2, 15, 15, \n");
  // etcdctl 3.4's table for the same status.
  EXPECT_EQ(FormatStatusTable({ok}),
            "+-----------------+------------------+---------+---------+-----------+------------+-"
            "----------+------------+--------------------+--------+\n"
            "|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | "
            "RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n"
            "+-----------------+------------------+---------+---------+-----------+------------+-"
            "----------+------------+--------------------+--------+\n"
            "| 127.0.0.1:32990 | 5423d0a83cedcac4 |  3.4.23 |   20 kB |      true |      false | "
            "        2 |         15 |                 15 |        |\n"
            "+-----------------+------------------+---------+---------+-----------+------------+-"
            "----------+------------+--------------------+--------+\n");
  const std::string table = FormatStatusTable({ok, down});
  EXPECT_NE(table.find(" 127.0.0.1:1 |"), std::string::npos) << table;
  EXPECT_NE(table.find("refused |"), std::string::npos) << table;

  EXPECT_EQ(
      FormatStatusJson({ok}),
      R"([{"Endpoint":"127.0.0.1:32990","Status":{"header":{"member_id":6062918944366119620},)"
      R"("version":"3.4.23","dbSize":20480,"leader":6062918944366119620,"raftIndex":15,)"
      R"("raftTerm":2,"raftAppliedIndex":15}}])"
      "\n");
}

TEST(ClientFormat, HumanBytesLikeGoHumanize) {
  EXPECT_EQ(HumanBytes(7), "7 B");
  EXPECT_EQ(HumanBytes(20480), "20 kB");
  EXPECT_EQ(HumanBytes(1234567), "1.2 MB");
  EXPECT_EQ(HumanBytes(999), "999 B");
}

}  // namespace
}  // namespace ballot::client
