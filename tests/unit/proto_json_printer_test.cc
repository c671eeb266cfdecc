// PrintProtoJson against protobuf's own printer: the same text for every message
// of our API filled at random (both field-name styles), and the escapes, numbers,
// enums and timestamps one by one. ParseProtoJson against protobuf's parser: the
// same message from the same text, or declined.
#include "physio/common/proto_json_printer.h"

#include "physio/common/proto_json_parser.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string Protobufs(const Message& message, bool proto_names) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = proto_names;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json, options).ok());
  return json;
}

std::string Ours(const Message& message, JsonFieldNames names) {
  std::string json;
  EXPECT_TRUE(PrintProtoJson(message, names, &json));
  return json;
}

// Fills `message` with random values: every kind of scalar, strings with the
// characters JSON escapes, unknown enum numbers, nested and repeated messages.
class Filler {
 public:
  explicit Filler(unsigned seed) : random_(seed) {}

  void Fill(Message& message, int depth) {
    const Descriptor* descriptor = message.GetDescriptor();
    if (descriptor->full_name() == "google.protobuf.Timestamp") {
      const auto* reflection = message.GetReflection();
      reflection->SetInt64(&message, descriptor->FindFieldByNumber(1), Pick(0, 4102444800));
      reflection->SetInt32(&message, descriptor->FindFieldByNumber(2),
                           static_cast<int>(Pick(0, 3) == 0 ? 0 : Pick(0, 3) == 0 ? Pick(0, 999) * 1000000 : Pick(0, 999999999)));
      return;
    }
    const auto* reflection = message.GetReflection();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      if (Pick(0, 2) == 0) continue;  // some fields left unset
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && depth >= 4) continue;
      const int count = field->is_repeated() ? static_cast<int>(Pick(0, 3)) : 1;
      for (int n = 0; n < count; ++n) Set(message, reflection, field, depth);
    }
  }

 private:
  long Pick(long low, long high) { return std::uniform_int_distribution<long>(low, high)(random_); }

  std::string Text() {
    static const std::string kPieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\r", "\b", "\f", std::string(1, '\x01'),
                                          std::string(1, '\x1f'), "\x7f", "<", ">", "&", "'", "=", "é", "€", "😀",
                                          "\xe2\x80\xa8", "\xe2\x80\xa9", "pt-1", "0"};
    std::string text;
    for (long i = Pick(0, 8); i > 0; --i) text += kPieces[Pick(0, std::size(kPieces) - 1)];
    return text;
  }

  double Double() {
    static const double kSpecial[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 1e21, 1e-7, 123456789.125, 2.5e-308,
                                      std::numeric_limits<double>::max(), std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity(), std::nan("")};
    if (Pick(0, 1) == 0) return kSpecial[Pick(0, std::size(kSpecial) - 1)];
    return std::uniform_real_distribution<double>(-1e6, 1e6)(random_);
  }

  void Set(Message& message, const google::protobuf::Reflection* reflection, const FieldDescriptor* field, int depth) {
    const bool repeated = field->is_repeated();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        const auto v = static_cast<std::int32_t>(Pick(-2000000000, 2000000000));
        repeated ? reflection->AddInt32(&message, field, v) : reflection->SetInt32(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        const auto v = static_cast<std::uint32_t>(Pick(0, 4000000000));
        repeated ? reflection->AddUInt32(&message, field, v) : reflection->SetUInt32(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        const std::int64_t v = Pick(0, 1) ? std::numeric_limits<std::int64_t>::min() + Pick(0, 5) : Pick(-99999, 99999);
        repeated ? reflection->AddInt64(&message, field, v) : reflection->SetInt64(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        const std::uint64_t v = std::numeric_limits<std::uint64_t>::max() - static_cast<std::uint64_t>(Pick(0, 5));
        repeated ? reflection->AddUInt64(&message, field, v) : reflection->SetUInt64(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        const double v = Double();
        repeated ? reflection->AddDouble(&message, field, v) : reflection->SetDouble(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        const auto v = static_cast<float>(Double());
        repeated ? reflection->AddFloat(&message, field, v) : reflection->SetFloat(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const bool v = Pick(0, 1) == 1;
        repeated ? reflection->AddBool(&message, field, v) : reflection->SetBool(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        // Mostly known values, sometimes a number this build does not know.
        const auto* type = field->enum_type();
        const int v = Pick(0, 5) == 0 ? 999 : type->value(static_cast<int>(Pick(0, type->value_count() - 1)))->number();
        repeated ? reflection->AddEnumValue(&message, field, v) : reflection->SetEnumValue(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string v = Text();
        if (field->type() == FieldDescriptor::TYPE_BYTES) v += std::string(1, '\0') + "\xff";
        repeated ? reflection->AddString(&message, field, v) : reflection->SetString(&message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        Fill(repeated ? *reflection->AddMessage(&message, field) : *reflection->MutableMessage(&message, field), depth + 1);
        break;
    }
  }

  std::mt19937 random_;
};

// A message of `type` (a generated one) filled by `filler`.
std::unique_ptr<Message> Filled(const Descriptor* type, Filler& filler) {
  std::unique_ptr<Message> message(google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
  filler.Fill(*message, 0);
  return message;
}

// Every message type of the three services' APIs (and the common one they import).
std::vector<const Descriptor*> ApiMessages() {
  std::vector<const Descriptor*> all;
  for (const auto* file : {physio::assessment::v1::Assessment::descriptor()->file(),
                           physio::planning::v1::Plan::descriptor()->file(),
                           physio::progress::v1::Visit::descriptor()->file()}) {
    std::vector<const google::protobuf::FileDescriptor*> files{file};
    for (int i = 0; i < file->dependency_count(); ++i) {
      if (file->dependency(i)->package().rfind("physio.", 0) == 0) files.push_back(file->dependency(i));
    }
    for (const auto* each : files) {
      for (int i = 0; i < each->message_type_count(); ++i) {
        const auto* type = each->message_type(i);
        if (std::find(all.begin(), all.end(), type) == all.end()) all.push_back(type);
      }
    }
  }
  return all;
}

TEST(ProtoJsonPrinter, PrintsWhatProtobufPrintsForEveryApiMessage) {
  google::protobuf::DynamicMessageFactory factory;
  const auto types = ApiMessages();
  ASSERT_GT(types.size(), 100u);
  int compared = 0;
  for (unsigned seed = 1; seed <= 12; ++seed) {
    Filler filler(seed);
    for (const auto* type : types) {
      const std::unique_ptr<Message> message = Filled(type, filler);
      ASSERT_EQ(Ours(*message, JsonFieldNames::kLowerCamel), Protobufs(*message, false)) << type->full_name();
      ASSERT_EQ(Ours(*message, JsonFieldNames::kProto), Protobufs(*message, true)) << type->full_name();
      ++compared;
    }
  }
  EXPECT_GT(compared, 1000);
}

TEST(ProtoJsonPrinter, ReadsBackToTheSameMessage) {
  Filler filler(99);
  for (const auto* type : ApiMessages()) {
    const std::unique_ptr<Message> message = Filled(type, filler);
    std::unique_ptr<Message> read(message->New());
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(Ours(*message, JsonFieldNames::kLowerCamel), read.get()).ok());
    google::protobuf::util::MessageDifferencer same;
    same.set_float_comparison(google::protobuf::util::MessageDifferencer::APPROXIMATE);  // NaN != NaN otherwise
    EXPECT_TRUE(same.Compare(*message, *read) || message->DebugString().find("nan") != std::string::npos)
        << type->full_name();
  }
}

TEST(ProtoJsonPrinter, EscapesAndNumbersOneByOne) {
  physio::planning::v1::PlanItem item;
  item.set_reason(std::string("quote\" backslash\\ nl\n tab\t ctl\x01 del\x7f <b> \xe2\x80\xa8 é"));
  EXPECT_EQ(Ours(item, JsonFieldNames::kLowerCamel), Protobufs(item, false));
  EXPECT_NE(Ours(item, JsonFieldNames::kLowerCamel).find(R"(quote\" backslash\\ nl\n tab\t ctl\u0001)"),
            std::string::npos);
  physio::common::v1::InstrumentScore score;
  score.set_score(0.1 + 0.2);  // needs 17 digits
  EXPECT_EQ(Ours(score, JsonFieldNames::kLowerCamel), Protobufs(score, false));
  EXPECT_NE(Ours(score, JsonFieldNames::kLowerCamel).find("0.30000000000000004"), std::string::npos);
  score.set_score(std::numeric_limits<double>::quiet_NaN());
  EXPECT_NE(Ours(score, JsonFieldNames::kLowerCamel).find("\"NaN\""), std::string::npos);
}

TEST(ProtoJsonPrinter, DefaultsAreOmittedAndPresenceIsKept) {
  physio::planning::v1::Plan plan;
  EXPECT_EQ(Ours(plan, JsonFieldNames::kLowerCamel), "{}");
  plan.set_plan_id("pl-1");
  plan.mutable_create_time();  // a message field set to its default still prints
  EXPECT_EQ(Ours(plan, JsonFieldNames::kLowerCamel), Protobufs(plan, false));
  EXPECT_NE(Ours(plan, JsonFieldNames::kLowerCamel).find("1970-01-01T00:00:00Z"), std::string::npos);
}

TEST(ProtoJsonPrinter, HandsOtherWellKnownTypesToProtobuf) {
  google::protobuf::Struct document;
  (*document.mutable_fields())["a"].set_number_value(1);
  EXPECT_EQ(Ours(document, JsonFieldNames::kLowerCamel), "{\"a\":1}");
}

TEST(ProtoJsonPrinter, RefusesATimestampOutOfRange) {
  physio::planning::v1::Plan plan;
  plan.mutable_create_time()->set_seconds(-99999999999999);
  std::string json;
  EXPECT_FALSE(PrintProtoJson(plan, JsonFieldNames::kLowerCamel, &json));
  std::string theirs;
  EXPECT_FALSE(google::protobuf::util::MessageToJsonString(plan, &theirs).ok());
}


// What protobuf's parser makes of `json` (as FromJson asks: unknown fields ignored); nullopt when it refuses.
std::optional<std::string> ProtobufReads(const std::string& json, const Message& type) {
  std::unique_ptr<Message> read(type.New());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(json, read.get(), options).ok()) return std::nullopt;
  return read->SerializeAsString();
}

std::optional<std::string> OursReads(const std::string& json, const Message& type) {
  std::unique_ptr<Message> read(type.New());
  if (!ParseProtoJson(json, read.get())) {
    EXPECT_EQ(read->ByteSizeLong(), 0u) << "a declined message is left empty";
    return std::nullopt;
  }
  return read->SerializeAsString();
}

TEST(ProtoJsonParser, ReadsWhatProtobufReadsForEveryApiMessage) {
  const auto types = ApiMessages();
  int read = 0, declined = 0;
  for (unsigned seed = 1; seed <= 8; ++seed) {
    Filler filler(seed);
    for (const auto* type : types) {
      const std::unique_ptr<Message> message = Filled(type, filler);
      // Both name styles, compact and with protobuf's whitespace (as jsonb's text has spaces).
      for (const bool proto_names : {false, true}) {
        for (const bool spaced : {false, true}) {
          std::string json;
          google::protobuf::util::JsonPrintOptions options;
          options.preserve_proto_field_names = proto_names;
          options.add_whitespace = spaced;
          ASSERT_TRUE(google::protobuf::util::MessageToJsonString(*message, &json, options).ok());
          const auto ours = OursReads(json, *message);
          if (!ours) {
            ++declined;
            continue;
          }
          ++read;
          ASSERT_EQ(ours, ProtobufReads(json, *message)) << type->full_name() << "\n" << json;
        }
      }
    }
  }
  // Declined: messages with bytes or maps (random text in bytes is rare in the records).
  EXPECT_GT(read, 9 * declined) << read << " read, " << declined << " declined";
}

// The text PostgreSQL gives back for a jsonb column: keys reordered, spaces, characters unescaped.
TEST(ProtoJsonParser, ReadsJsonbTextAndSkipsFieldsItDoesNotKnow) {
  const std::string json =
      R"({"etag": "v1", "scores": [{"score": 12.5, "raw_sum": "25", "instrument": "INSTRUMENT_ODI"}], )"
      R"("answers": [{"value": 3, "itemId": "q\u00e9\"\\\/\n1", "instrument": 2}, {"text": "\ud83d\ude00 é €"}], )"
      R"("history": {"ageYears": 0, "previous_episodes": -2}, "red_flags": {"action": "RED_FLAG_ACTION_NONE", )"
      R"("concerns": [], "manipulation_contraindicated": true}, "create_time": "2026-12-03T20:15:58.125Z", )"
      R"("created_by": null, "examination": null, "added_later": {"deep": [1, -2.5e3, "x", null, true, {}]}, )"
      R"("patient_id": "pt-1"})";
  physio::assessment::v1::Assessment type;
  const auto ours = OursReads(json, type);
  ASSERT_TRUE(ours.has_value());
  ASSERT_EQ(ours, ProtobufReads(json, type));
  physio::assessment::v1::Assessment read;
  ASSERT_TRUE(read.ParseFromString(*ours));
  EXPECT_EQ(read.answers(0).item_id(), "qé\"\\/\n1");
  EXPECT_EQ(read.answers(1).text(), "😀 é €");
  EXPECT_TRUE(read.history().has_age_years());  // presence kept for a zero
  EXPECT_EQ(read.create_time().nanos(), 125000000);
  EXPECT_EQ(read.scores(0).raw_sum(), 25);
}

TEST(ProtoJsonParser, DeclinesWhatItDoesNotTakeAndProtobufDecides) {
  physio::assessment::v1::Assessment type;
  for (const std::string& json : {
           std::string(R"({"patient_id": "pt-1")"),               // unterminated
           std::string(R"({"patient_id": "pt-1"} x)"),            // trailing text
           std::string(R"({"scores": [{"raw_sum": 1.0}]})"),      // a fraction for an integer
           std::string(R"({"scores": [{"raw_sum": 01}]})"),       // not JSON's number grammar
           std::string(R"({"scores": [{"raw_sum": 5000000000}]})"),             // past int32
           std::string(R"({"scores": [{"instrument": "INSTRUMENT_NEWER"}]})"),  // an enum name this build does not know
           std::string(R"({"patient_id": "a", "patientId": "b"})"),             // one field twice
           std::string(R"({"patient_id": "\ud800"})"),            // a lone surrogate
           std::string("{\"patient_id\": \"\xc3\"}"),             // not UTF-8
           std::string("{\"patient_id\": \"a\tb\"}"),             // a raw control character
           std::string(R"({"answers": [null]})"),                 // null inside a list
           std::string(R"({"create_time": "yesterday"})"),        // not RFC 3339
       }) {
    EXPECT_FALSE(OursReads(json, type).has_value()) << json;
  }
  // A well-known type other than Timestamp goes to protobuf's parser too.
  google::protobuf::Struct document;
  EXPECT_FALSE(ParseProtoJson(R"({"a": 1})", &document));
}

}  // namespace
}  // namespace physio
