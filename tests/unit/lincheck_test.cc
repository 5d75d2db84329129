#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/random.h"
#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace ballot::lincheck {
namespace {

using Verdict = CheckResult::Verdict;

// --- Builders -------------------------------------------------------------------------------

Operation Put(uint64_t client, std::string key, std::string value, int64_t call, int64_t ret,
              OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Operation Get(uint64_t client, std::string key, std::optional<std::string> output, int64_t call,
              int64_t ret, OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kGet;
  op.key = std::move(key);
  op.output = std::move(output);
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Operation Cas(uint64_t client, std::string key, std::string expected, std::string value,
              bool succeeded, int64_t call, int64_t ret, OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kCas;
  op.key = std::move(key);
  op.expected = std::move(expected);
  op.value = std::move(value);
  op.cas_succeeded = succeeded;
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Operation Delete(uint64_t client, std::string key, int64_t call, int64_t ret,
                 OpStatus status = OpStatus::kOk) {
  Operation op;
  op.client = client;
  op.kind = OpKind::kDelete;
  op.key = std::move(key);
  op.call = call;
  op.ret = ret;
  op.status = status;
  return op;
}

Verdict VerdictOf(const std::vector<Operation>& history) { return Check(history).verdict; }

// --- Parsing --------------------------------------------------------------------------------

TEST(ParseOperationTest, PutExample) {
  auto op = ParseOperation(
      R"({"client": 3, "op": "put", "key": "k1", "value": "v7", "call": 1200, "return": 1350, "status": "ok"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(*op, Put(3, "k1", "v7", 1200, 1350));
}

TEST(ParseOperationTest, GetExample) {
  auto op = ParseOperation(
      R"({"client": 4, "op": "get", "key": "k1", "output": "v7", "call": 1300, "return": 1400, "status": "ok"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(*op, Get(4, "k1", "v7", 1300, 1400));
}

TEST(ParseOperationTest, GetNullOutputMeansAbsent) {
  auto op = ParseOperation(
      R"({"client": 4, "op": "get", "key": "k1", "output": null, "call": 1, "return": 2, "status": "ok"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->output, std::nullopt);
}

TEST(ParseOperationTest, CasExample) {
  auto op = ParseOperation(
      R"({"client": 5, "op": "cas", "key": "k1", "expected": "v7", "value": "v8", "output": true, "call": 1500, "return": 1600, "status": "ok"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(*op, Cas(5, "k1", "v7", "v8", true, 1500, 1600));
}

TEST(ParseOperationTest, UnknownDeleteWithoutReturn) {
  auto op = ParseOperation(
      R"({"client": 6, "op": "delete", "key": "k1", "call": 1700, "status": "unknown"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(*op, Delete(6, "k1", 1700, 0, OpStatus::kUnknown));
}

TEST(ParseOperationTest, UnknownGetNeedsNoOutput) {
  auto op =
      ParseOperation(R"({"client": 1, "op": "get", "key": "k", "call": 5, "status": "unknown"})");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->status, OpStatus::kUnknown);
}

TEST(ParseOperationTest, RejectsMalformedLines) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"client": 1, "op": "put", "key": "k")", "bad JSON"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"client": 1, "op": "incr", "key": "k", "call": 1, "return": 2, "status": "ok"})",
       "unknown op"},
      {R"({"client": 1, "op": "put", "value": "v", "call": 1, "return": 2, "status": "ok"})",
       "\"key\""},
      {R"({"client": 1, "op": "put", "key": "k", "call": 1, "return": 2, "status": "ok"})",
       "\"value\""},
      {R"({"client": 1, "op": "put", "key": "k", "value": "v", "call": 5, "return": 4, "status": "ok"})",
       "before call"},
      {R"({"client": 1, "op": "put", "key": "k", "value": "v", "call": 5, "status": "ok"})",
       "\"return\""},
      {R"({"client": 1, "op": "get", "key": "k", "call": 5, "return": 6, "status": "ok"})",
       "\"output\""},
      {R"({"client": 1, "op": "cas", "key": "k", "expected": "a", "value": "b", "call": 5, "return": 6, "status": "ok"})",
       "\"output\""},
      {R"({"client": 1, "op": "get", "key": "k", "output": 7, "call": 5, "return": 6, "status": "ok"})",
       "string or null"},
      {R"({"client": -1, "op": "delete", "key": "k", "call": 5, "return": 6, "status": "ok"})",
       "\"client\""},
      {R"({"client": 1, "op": "delete", "key": "k", "call": "5", "return": 6, "status": "ok"})",
       "\"call\""},
      {R"({"client": 1, "op": "delete", "key": "k", "call": 5, "return": 6, "status": "maybe"})",
       "unknown status"},
      {R"({"client": 1, "op": "delete", "key": "k", "call": 5, "return": 6})", "\"status\""},
  };
  for (const auto& [line, fragment] : cases) {
    auto op = ParseOperation(line);
    ASSERT_FALSE(op.ok()) << line;
    EXPECT_EQ(op.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(op.status().message().find(fragment), std::string::npos)
        << line << " -> " << op.status().message();
  }
}

TEST(ParseHistoryTest, SkipsBlankLinesAndKeepsOrder) {
  std::istringstream in(
      "\n"
      R"({"client": 3, "op": "put", "key": "k1", "value": "v7", "call": 1200, "return": 1350, "status": "ok"})"
      "\n   \n"
      R"({"client": 6, "op": "delete", "key": "k1", "call": 1700, "status": "unknown"})"
      "\r\n");
  auto history = ParseHistory(in);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].kind, OpKind::kPut);
  EXPECT_EQ((*history)[1].kind, OpKind::kDelete);
}

TEST(ParseHistoryTest, ErrorNamesTheLine) {
  std::istringstream in(
      R"({"client": 3, "op": "put", "key": "k1", "value": "v7", "call": 1200, "return": 1350, "status": "ok"})"
      "\n\n"
      R"({"client": 3, "op": "put", "key": "k1", "value": "v8", "call": 1400, "return": 1450, "status": "ok"})"
      "\n"
      R"({"client": 4, "op": "get", "key": "k1", "call": 1300, "return": 1400, "status": "ok"})"
      "\n");
  auto history = ParseHistory(in);
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().message().rfind("line 4: ", 0), 0u) << history.status().message();
}

TEST(ParseHistoryTest, BadJsonNamesTheLine) {
  std::istringstream in("{}\n{not json\n");
  auto history = ParseHistory(in);
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().message().rfind("line 1: ", 0), 0u) << history.status().message();
  std::istringstream in2(
      R"({"client": 6, "op": "delete", "key": "k1", "call": 1700, "status": "unknown"})"
      "\n{not json\n");
  auto history2 = ParseHistory(in2);
  ASSERT_FALSE(history2.ok());
  EXPECT_EQ(history2.status().message().rfind("line 2: bad JSON", 0), 0u)
      << history2.status().message();
}

TEST(ToJsonLineTest, RoundTripsEveryShape) {
  const std::vector<Operation> ops = {
      Put(3, "k1", "v7", 1200, 1350),
      Put(3, "k\"1\n", "v\\7 \xc3\xa9", -5, 0, OpStatus::kFail),
      Get(4, "k1", "v7", 1300, 1400),
      Get(4, "k1", std::nullopt, 1300, 1400),
      Get(4, "k1", std::nullopt, 1300, 0, OpStatus::kUnknown),
      Cas(5, "k1", "v7", "v8", true, 1500, 1600),
      Cas(5, "k1", "v7", "v8", false, 1500, 1600),
      Cas(5, "k1", "v7", "", false, 1500, 0, OpStatus::kUnknown),
      Delete(6, "k1", 1700, 0, OpStatus::kUnknown),
      Delete(6, "", 1700, 1800),
      Delete(UINT64_MAX, "k", INT64_MIN, INT64_MAX),
  };
  for (const Operation& op : ops) {
    const std::string line = ToJsonLine(op);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto parsed = ParseOperation(line);
    ASSERT_TRUE(parsed.ok()) << line << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, op) << line;
  }
}

TEST(ToJsonLineTest, WritesTheDocumentedFields) {
  EXPECT_EQ(ToJsonLine(Cas(5, "k1", "v7", "v8", true, 1500, 1600)),
            R"({"client":5,"op":"cas","key":"k1","expected":"v7","value":"v8","output":true,)"
            R"("call":1500,"return":1600,"status":"ok"})");
}

// --- Classic small cases --------------------------------------------------------------------

TEST(CheckTest, EmptyHistoryIsLinearizable) { EXPECT_EQ(VerdictOf({}), Verdict::kLinearizable); }

TEST(CheckTest, SequentialHistory) {
  EXPECT_EQ(VerdictOf({Get(1, "k", std::nullopt, 0, 1), Put(1, "k", "a", 2, 3),
                       Get(2, "k", "a", 4, 5), Put(2, "k", "b", 6, 7), Get(1, "k", "b", 8, 9)}),
            Verdict::kLinearizable);
}

TEST(CheckTest, ConcurrentPutAndGetEitherOrder) {
  // The get overlaps the put, so it may read before or after it.
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 10), Get(2, "k", "a", 5, 6)}), Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 10), Get(2, "k", std::nullopt, 5, 6)}),
            Verdict::kLinearizable);
}

TEST(CheckTest, OperationsThatTouchAreConcurrent) {
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 5), Get(2, "k", std::nullopt, 5, 6)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 5), Get(2, "k", std::nullopt, 6, 7)}),
            Verdict::kNotLinearizable);
}

TEST(CheckTest, StaleReadAfterCompletedWriteRejected) {
  const CheckResult result =
      Check({Put(1, "k", "a", 0, 1), Put(1, "k", "b", 2, 3), Get(2, "k", "a", 4, 5)});
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.key, "k");
}

TEST(CheckTest, ReadOfValueNeverWrittenRejected) {
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 10), Get(2, "k", "z", 2, 3)}),
            Verdict::kNotLinearizable);
}

TEST(CheckTest, CasSemantics) {
  // Success needs the expected value present.
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Cas(1, "k", "a", "b", true, 2, 3),
                       Get(1, "k", "b", 4, 5)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Cas(1, "k", "a", "b", true, 2, 3)}), Verdict::kNotLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "x", 0, 1), Cas(1, "k", "a", "b", true, 2, 3)}),
            Verdict::kNotLinearizable);
  // Failure means not equal, and has no effect; an absent key is never equal.
  EXPECT_EQ(VerdictOf({Cas(1, "k", "a", "b", false, 0, 1), Get(1, "k", std::nullopt, 2, 3)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Cas(1, "k", "a", "b", false, 2, 3)}),
            Verdict::kNotLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "x", 0, 1), Cas(1, "k", "a", "b", false, 2, 3),
                       Get(1, "k", "b", 4, 5)}),
            Verdict::kNotLinearizable);
  // Two concurrent cas from the same value: only one may win.
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Cas(1, "k", "a", "b", true, 2, 10),
                       Cas(2, "k", "a", "c", true, 2, 10)}),
            Verdict::kNotLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Cas(1, "k", "a", "b", true, 2, 10),
                       Cas(2, "k", "a", "c", false, 2, 10), Get(3, "k", "b", 11, 12)}),
            Verdict::kLinearizable);
}

TEST(CheckTest, UnknownCasMayHaveSucceededOrNot) {
  const Operation unknown_cas = Cas(2, "k", "a", "b", false, 2, 0, OpStatus::kUnknown);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), unknown_cas, Get(1, "k", "b", 10, 11)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), unknown_cas, Get(1, "k", "a", 10, 11)}),
            Verdict::kLinearizable);
  // But it cannot succeed from a value other than the expected one.
  EXPECT_EQ(VerdictOf({Put(1, "k", "x", 0, 1), unknown_cas, Get(1, "k", "b", 10, 11)}),
            Verdict::kNotLinearizable);
}

TEST(CheckTest, UnknownPutMayExplainALaterRead) {
  // The put's client gave up, yet the write landed after the read at 20-21.
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 0, OpStatus::kUnknown),
                       Get(2, "k", std::nullopt, 20, 21), Get(2, "k", "a", 30, 31)}),
            Verdict::kLinearizable);
  // It cannot have taken effect before its call.
  EXPECT_EQ(VerdictOf({Get(2, "k", "a", 0, 1), Put(1, "k", "a", 5, 0, OpStatus::kUnknown)}),
            Verdict::kNotLinearizable);
}

TEST(CheckTest, UnknownPutMayBeOmitted) {
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Put(2, "k", "b", 2, 0, OpStatus::kUnknown),
                       Get(1, "k", "a", 10, 11), Get(1, "k", "a", 12, 13)}),
            Verdict::kLinearizable);
}

TEST(CheckTest, UnknownPutTakesEffectAtMostOnce) {
  EXPECT_EQ(VerdictOf({Put(2, "k", "b", 0, 0, OpStatus::kUnknown), Get(1, "k", "b", 10, 11),
                       Put(1, "k", "a", 12, 13), Get(1, "k", "b", 14, 15)}),
            Verdict::kNotLinearizable);
}

TEST(CheckTest, FailedAndUnknownReadOperationsIgnored) {
  EXPECT_EQ(
      VerdictOf({Put(1, "k", "a", 0, 1), Put(1, "k", "b", 2, 3, OpStatus::kFail),
                 Cas(1, "k", "a", "c", true, 4, 5, OpStatus::kFail),
                 Delete(1, "k", 4, 5, OpStatus::kFail), Get(1, "k", "zzz", 6, 7, OpStatus::kFail),
                 Get(1, "k", "zzz", 6, 0, OpStatus::kUnknown), Get(1, "k", "a", 8, 9)}),
      Verdict::kLinearizable);
}

TEST(CheckTest, DeleteSemantics) {
  EXPECT_EQ(
      VerdictOf({Put(1, "k", "a", 0, 1), Delete(1, "k", 2, 3), Get(1, "k", std::nullopt, 4, 5),
                 Delete(1, "k", 6, 7), Cas(1, "k", "a", "b", false, 8, 9)}),
      Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Put(1, "k", "a", 0, 1), Delete(1, "k", 2, 3), Get(1, "k", "a", 4, 5)}),
            Verdict::kNotLinearizable);
  EXPECT_EQ(
      VerdictOf({Put(1, "k", "a", 0, 1), Delete(1, "k", 2, 3), Cas(1, "k", "a", "b", true, 4, 5)}),
      Verdict::kNotLinearizable);
}

TEST(CheckTest, KeysAreIndependent) {
  // Each key alone is fine; reading "a" from k2 would not be.
  EXPECT_EQ(VerdictOf({Put(1, "k1", "a", 0, 1), Get(2, "k2", std::nullopt, 2, 3),
                       Get(2, "k1", "a", 4, 5)}),
            Verdict::kLinearizable);
  const CheckResult result =
      Check({Put(1, "k1", "a", 0, 1), Get(2, "k2", "a", 2, 3), Get(2, "k1", "a", 4, 5)});
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.key, "k2");
}

// --- Culprits -------------------------------------------------------------------------------

TEST(CulpritTest, StaleReadIsExplainedByItsWrites) {
  const Operation w1 = Put(1, "k", "a", 10, 20);
  const Operation w2 = Put(2, "k", "b", 30, 40);
  const Operation stale = Get(3, "k", "a", 50, 60);
  const std::vector<Operation> history = {Get(4, "k", std::nullopt, 0, 5),
                                          w1,
                                          Get(4, "k", "a", 21, 25),
                                          Put(5, "other", "x", 0, 100),
                                          w2,
                                          Get(1, "k", "b", 41, 45),
                                          Put(4, "k", "c", 70, 80),
                                          stale,  // the last put starts after the stale read
                                          Get(2, "k", "c", 85, 90),
                                          Delete(1, "k", 91, 92),
                                          Get(5, "other", "x", 101, 102)};
  const CheckResult result = Check(history);
  ASSERT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.key, "k");
  EXPECT_EQ(result.culprits, (std::vector<Operation>{w1, w2, stale}));

  // Each culprit matters: without the overwrite or the read, the rest can be ordered.
  EXPECT_EQ(VerdictOf(result.culprits), Verdict::kNotLinearizable);
  EXPECT_EQ(VerdictOf({w1, stale}), Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({w1, w2}), Verdict::kLinearizable);

  const std::string explanation = result.Explain();
  EXPECT_NE(explanation.find("NOT linearizable: key \"k\""), std::string::npos) << explanation;
  const size_t first = explanation.find(ToJsonLine(w1));
  const size_t second = explanation.find(ToJsonLine(w2));
  const size_t third = explanation.find(ToJsonLine(stale));
  ASSERT_NE(third, std::string::npos) << explanation;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(CulpritTest, DeleteThatExplainsAnAbsentReadIsKept) {
  // The violation is the cas; the put/delete/get-null triple is innocent and must not be
  // reported as "get null after put" by dropping the delete.
  const Operation cas = Cas(2, "k", "a", "b", true, 40, 50);
  const std::vector<Operation> history = {Put(1, "k", "a", 0, 1), Delete(1, "k", 2, 3),
                                          Get(1, "k", std::nullopt, 4, 5), cas};
  const CheckResult result = Check(history);
  ASSERT_EQ(result.verdict, Verdict::kNotLinearizable);
  ASSERT_FALSE(result.culprits.empty());
  EXPECT_EQ(VerdictOf(result.culprits), Verdict::kNotLinearizable);
  EXPECT_NE(std::find(result.culprits.begin(), result.culprits.end(), cas), result.culprits.end());
  for (const Operation& op : result.culprits) {
    EXPECT_NE(op.kind, OpKind::kGet) << "the absent read is not part of the violation";
  }
}

// --- Agreement with brute force on small random histories -------------------------------------

// Tries every order (and, for unknown operations, every choice of omission) directly.
bool BruteForceLinearizable(const std::vector<Operation>& history) {
  std::vector<Operation> ops;
  for (const Operation& op : history) {
    if (op.status == OpStatus::kFail) continue;
    if (op.status == OpStatus::kUnknown && op.kind == OpKind::kGet) continue;
    ops.push_back(op);
  }
  std::vector<bool> placed(ops.size(), false);
  std::function<bool(std::optional<std::string>)> extend = [&](std::optional<std::string> state) {
    bool all_certain_placed = true;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!placed[i] && ops[i].status == OpStatus::kOk) all_certain_placed = false;
    }
    if (all_certain_placed) return true;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (placed[i]) continue;
      bool minimal = true;  // no unplaced ok operation returned before this one was called
      for (size_t j = 0; j < ops.size(); ++j) {
        if (!placed[j] && j != i && ops[j].status == OpStatus::kOk && ops[j].ret < ops[i].call) {
          minimal = false;
        }
      }
      if (!minimal) continue;
      const Operation& op = ops[i];
      std::optional<std::string> next = state;
      switch (op.kind) {
        case OpKind::kGet:
          if (op.output != state) continue;
          break;
        case OpKind::kPut:
          next = op.value;
          break;
        case OpKind::kDelete:
          next = std::nullopt;
          break;
        case OpKind::kCas: {
          const bool equal = state.has_value() && *state == op.expected;
          const bool succeeds = op.status == OpStatus::kOk ? op.cas_succeeded : true;
          if (equal != succeeds) continue;
          if (succeeds) next = op.value;
          break;
        }
      }
      placed[i] = true;
      const bool ok = extend(next);
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return extend(std::nullopt);
}

std::vector<Operation> RandomSmallHistory(Random& random) {
  const char* values[] = {"a", "b", "c"};
  std::vector<Operation> ops;
  const int count = static_cast<int>(random.Range(1, 7));
  for (int i = 0; i < count; ++i) {
    const int64_t call = random.Range(0, 20);
    const int64_t ret = call + random.Range(0, 8);
    const OpStatus status = random.Chance(0.7)   ? OpStatus::kOk
                            : random.Chance(0.7) ? OpStatus::kUnknown
                                                 : OpStatus::kFail;
    const int64_t recorded_ret = status == OpStatus::kOk ? ret : 0;
    const std::string value = values[random.Uniform(3)];
    switch (random.Uniform(4)) {
      case 0: {
        std::optional<std::string> output;
        if (random.Chance(0.75)) output = values[random.Uniform(3)];
        ops.push_back(Get(i, "k", output, call, recorded_ret, status));
        break;
      }
      case 1:
        ops.push_back(Put(i, "k", value, call, recorded_ret, status));
        break;
      case 2:
        ops.push_back(Cas(i, "k", values[random.Uniform(3)], value, random.Chance(0.5), call,
                          recorded_ret, status));
        break;
      default:
        ops.push_back(Delete(i, "k", call, recorded_ret, status));
        break;
    }
  }
  return ops;
}

TEST(CheckTest, AgreesWithBruteForceOnSmallHistories) {
  Random random(20240601);
  int violations = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const std::vector<Operation> history = RandomSmallHistory(random);
    const bool expected = BruteForceLinearizable(history);
    const CheckResult result = Check(history);
    ASSERT_EQ(result.verdict, expected ? Verdict::kLinearizable : Verdict::kNotLinearizable)
        << "trial " << trial;
    if (!expected) {
      ++violations;
      // Culprits are a subset of the history that is itself a violation.
      ASSERT_FALSE(result.culprits.empty());
      EXPECT_FALSE(BruteForceLinearizable(result.culprits)) << "trial " << trial;
      for (const Operation& culprit : result.culprits) {
        EXPECT_NE(std::find(history.begin(), history.end(), culprit), history.end());
      }
    }
  }
  // Both verdicts must be exercised for the comparison to mean anything.
  EXPECT_GT(violations, 300);
  EXPECT_LT(violations, 2700);
}

// --- Timeout --------------------------------------------------------------------------------

TEST(CheckTest, TimesOutOnAnExponentialHistory) {
  // 40 overlapping puts of distinct values and a read of a value none of them wrote: deciding
  // that needs every subset of the puts, 2^40 configurations.
  std::vector<Operation> history;
  for (int i = 0; i < 40; ++i) history.push_back(Put(i, "k", "v" + std::to_string(i), i, 1000));
  history.push_back(Get(99, "k", "never", 50, 1000));
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = Check(history, {.timeout_seconds = 0.2});
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(result.verdict, Verdict::kTimedOut);
  EXPECT_GT(result.states_explored, 1000u);
  EXPECT_LT(elapsed, 2.0);
  EXPECT_NE(result.Explain().find("timed out"), std::string::npos);
}

// --- Large generated histories --------------------------------------------------------------

struct Generated {
  std::vector<Operation> history;
  std::vector<int64_t> linearization_points;  // per operation; meaningful if it took effect
};

// Simulates clients against an atomic map: each operation takes effect at a random point inside
// its interval, and each client's operations are sequential. The result is linearizable by
// construction. Some operations fail (no effect) or end unknown (effect or not, return lost).
Generated GenerateHistory(uint64_t seed, int clients, int keys, int operations) {
  Random random(seed);
  Generated out;
  std::vector<int64_t> client_clock(clients, 0);
  std::vector<bool> takes_effect;
  for (int i = 0; i < operations; ++i) {
    const int client = static_cast<int>(random.Uniform(clients));
    Operation op;
    op.client = client;
    op.key = "key" + std::to_string(random.Uniform(keys));
    op.call = client_clock[client] + random.Range(0, 50);
    op.ret = op.call + random.Range(0, 200);
    client_clock[client] = op.ret + 1;
    const uint64_t kind = random.Uniform(10);
    op.kind = kind < 4   ? OpKind::kGet
              : kind < 7 ? OpKind::kPut
              : kind < 9 ? OpKind::kCas
                         : OpKind::kDelete;
    op.value = "v" + std::to_string(i);
    op.status = random.Chance(0.02)   ? OpStatus::kUnknown
                : random.Chance(0.01) ? OpStatus::kFail
                                      : OpStatus::kOk;
    takes_effect.push_back(op.status == OpStatus::kOk ||
                           (op.status == OpStatus::kUnknown && random.Chance(0.5)));
    out.linearization_points.push_back(random.Range(op.call, op.ret));
    out.history.push_back(std::move(op));
  }

  std::vector<size_t> order(operations);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return out.linearization_points[a] < out.linearization_points[b];
  });
  std::map<std::string, std::string> map;
  for (size_t i : order) {
    Operation& op = out.history[i];
    auto it = map.find(op.key);
    if (op.kind == OpKind::kCas) {
      // Half of the cas operations expect the current value, so that many succeed.
      const bool aim = it != map.end() && random.Chance(0.5);
      op.expected = aim ? it->second : "v" + std::to_string(random.Uniform(operations));
    }
    if (!takes_effect[i]) {
      if (op.kind == OpKind::kGet) op.output = "garbage";
      continue;
    }
    switch (op.kind) {
      case OpKind::kGet:
        if (it != map.end()) op.output = it->second;
        break;
      case OpKind::kPut:
        map[op.key] = op.value;
        break;
      case OpKind::kDelete:
        if (it != map.end()) map.erase(it);
        break;
      case OpKind::kCas:
        op.cas_succeeded = it != map.end() && it->second == op.expected;
        if (op.cas_succeeded) it->second = op.value;
        break;
    }
  }
  for (Operation& op : out.history) {
    if (op.status != OpStatus::kOk) op.ret = 0;
    if (op.kind != OpKind::kGet) op.output.reset();
  }
  return out;
}

bool CertainWrite(const Operation& op) {
  return op.status == OpStatus::kOk &&
         (op.kind == OpKind::kPut || (op.kind == OpKind::kCas && op.cas_succeeded));
}

// Makes one read in the second half stale: it returns the value of a write w1 that a later write
// w2 overwrote, both complete before the read was called. Values are unique, so no ordering can
// explain it. Returns the index of the read.
size_t InjectStaleRead(std::vector<Operation>& history) {
  for (size_t g = history.size() / 2; g < history.size(); ++g) {
    Operation& read = history[g];
    if (read.kind != OpKind::kGet || read.status != OpStatus::kOk) continue;
    for (const Operation& w1 : history) {
      if (w1.key != read.key || !CertainWrite(w1) || read.output == w1.value) continue;
      for (const Operation& w2 : history) {
        if (w2.key == read.key && CertainWrite(w2) && w1.ret < w2.call && w2.ret < read.call) {
          read.output = w1.value;
          return g;
        }
      }
    }
  }
  ADD_FAILURE() << "no read to make stale";
  return 0;
}

TEST(CheckPerformanceTest, TenThousandOperationsLinearizable) {
  const Generated generated = GenerateHistory(7, 20, 100, 10000);
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = Check(generated.history);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("10k operations, 100 keys, 20 clients: %s in %.3f s (%llu states)\n",
              result.verdict == Verdict::kLinearizable ? "linearizable" : "NOT linearizable",
              elapsed, static_cast<unsigned long long>(result.states_explored));
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result.Explain();
  EXPECT_GT(result.operations_checked, 9500u);
  EXPECT_LT(elapsed, 10.0);
}

TEST(CheckPerformanceTest, OneBusyKey) {
  // 20 clients on one key keep about 16 operations in flight at any time: no partitioning helps,
  // and without the read-only reduction this search exhausts its memory bound.
  const Generated generated = GenerateHistory(3, 20, 1, 1000);
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = Check(generated.history);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("1000 operations on one key, 20 clients: %.3f s (%llu states)\n", elapsed,
              static_cast<unsigned long long>(result.states_explored));
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result.Explain();
  EXPECT_LT(elapsed, 10.0);
}

TEST(CheckPerformanceTest, TenThousandOperationsWithStaleReadRejected) {
  Generated generated = GenerateHistory(11, 20, 100, 10000);
  ASSERT_EQ(Check(generated.history).verdict, Verdict::kLinearizable);
  const size_t stale = InjectStaleRead(generated.history);
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = Check(generated.history);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("10k operations with a stale read: rejected in %.3f s, %zu culprits\n%s\n", elapsed,
              result.culprits.size(), result.Explain().c_str());
  ASSERT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.key, generated.history[stale].key);
  EXPECT_NE(std::find(result.culprits.begin(), result.culprits.end(), generated.history[stale]),
            result.culprits.end());
  EXPECT_LE(result.culprits.size(), 6u);
  EXPECT_EQ(VerdictOf(result.culprits), Verdict::kNotLinearizable);
  EXPECT_LT(elapsed, 10.0);
}

}  // namespace
}  // namespace ballot::lincheck
