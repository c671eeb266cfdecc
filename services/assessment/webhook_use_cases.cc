// The webhook use cases of AssessmentApp: subscriptions (create, list, update, delete,
// rotate the secret), their delivery log and replays. Integrators only (the role table);
// one bound to clinics manages the subscriptions of those clinics. The sending itself is
// the WebhookDispatcher's.
#include <google/protobuf/util/time_util.h>

#include <limits>
#include <set>

#include "assessment_app.h"
#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"
#include "physio/server/event_kinds.h"

namespace physio::assessment {

namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
constexpr auto kStoreBudget = std::chrono::seconds(5);
constexpr int kMaxKinds = 32;
constexpr std::size_t kMaxDescription = 200;

// An integrator bound to clinics (its token names clinics and no organisation-wide grant).
bool ClinicBound(const CallContext& ctx) { return !ctx.all_clinics && !ctx.clinics.empty(); }

void RefusePlatforms(const CallContext& ctx) {
  // A platform reaches only the patients who consent to it; a subscription sees a whole tenant
  // (or clinic). Platforms follow their patients' events on WatchEvents, which filters by consent.
  if (!ctx.platform.empty()) {
    throw Error(ErrorCode::kPermissionDenied,
                "webhook subscriptions are the tenant's own integrations; a telehealth platform follows its "
                "patients' events with WatchEvents");
  }
}

void ValidateDescription(const std::string& text) {
  if (text.size() > kMaxDescription) ThrowInvalidArgument("description", "at most 200 characters");
  if (auto why = ControlCharacterRefusal(text, LineBreaks::kOneLine); !why.empty()) {
    ThrowInvalidArgument("description", why);
  }
}

void ValidateUrl(const std::string& url, const WebhookDestinationPolicy& policy) {
  ResolveWebhookDestination(ParseWebhookUrl(url, policy, "url"), policy, "url");
}

std::int64_t ParseCursor(const std::string& field, const std::string& cursor) {
  if (cursor.empty()) return 0;
  if (cursor.size() > 18 || cursor.find_first_not_of("0123456789") != std::string::npos) {
    ThrowInvalidArgument(field, "not a cursor of that service's feed");
  }
  return std::stoll(cursor);
}

// Page tokens of ListWebhookDeliveries: the last delivery id, bound to the list it came from.
std::string DeliveriesToken(const std::string& scope, const std::string& last_id) {
  return HexEncode("wd1|" + Sha256Hex(scope).substr(0, 16) + "|" + last_id);
}

std::int64_t DeliveriesBefore(const std::string& scope, const std::string& token) {
  if (token.empty()) return std::numeric_limits<std::int64_t>::max();
  std::string text;
  try {
    text = HexDecode(token);
  } catch (const std::exception&) {
    ThrowInvalidArgument("page_token", "is not a token this service issued");
  }
  const std::string prefix = "wd1|" + Sha256Hex(scope).substr(0, 16) + "|";
  const std::string id = text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : "";
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
    ThrowInvalidArgument("page_token", "is not a token this service issued for this list");
  }
  return std::stoll(id);
}
}  // namespace

WebhookRecords& AssessmentApp::Webhooks() const {
  if (webhooks_ == nullptr) throw Error(ErrorCode::kFailedPrecondition, "webhooks are not configured on this server");
  return *webhooks_;
}

pb::WebhookSubscription AssessmentApp::ManagedSubscription(const CallContext& ctx, const std::string& id) const {
  ValidateOpaqueId("subscription_id", id);
  auto found = Webhooks().Find(ctx.tenant, id, ctx.DeadlineCappedAt(kStoreBudget));
  if (!found || (ClinicBound(ctx) && !ctx.clinics.contains(found->clinic_id()))) {
    throw Error(ErrorCode::kNotFound, "webhook subscription not found");
  }
  return *found;
}

pb::CreateWebhookSubscriptionResponse AssessmentApp::CreateWebhookSubscription(
    const CallContext& ctx, const pb::CreateWebhookSubscriptionRequest& request, AuditTarget& audit) {
  RefusePlatforms(ctx);
  ValidateRequestId("request_id", request.request_id());
  WebhookSpec spec;
  spec.kinds = EventKindNames("event_kinds", request.event_kinds(), kMaxKinds);
  if (!request.clinic_id().empty() && !IsClinicId(request.clinic_id())) {
    ThrowInvalidArgument("clinic_id", "1-64 characters of [A-Za-z0-9._:-]");
  }
  if (ClinicBound(ctx)) {
    if (request.clinic_id().empty()) {
      ThrowInvalidArgument("clinic_id", "required: an integrator bound to clinics subscribes to one of them");
    }
    if (!ctx.clinics.contains(request.clinic_id())) {
      throw Error(ErrorCode::kPermissionDenied, "clinic_id: not one of the clinics your token names");
    }
  }
  ValidateDescription(request.description());
  ValidateUrl(request.url(), settings_.webhook_destinations);
  spec.url = request.url();
  spec.clinic_id = request.clinic_id();
  spec.description = request.description();
  auto& store = Webhooks();
  const auto deadline = ctx.DeadlineCappedAt(kStoreBudget);
  if (store.CountLive(ctx.tenant, deadline) >= settings_.webhook_max_subscriptions) {
    throw Error(ErrorCode::kFailedPrecondition, "this tenant has " + std::to_string(settings_.webhook_max_subscriptions) +
                                                    " webhook subscriptions, the most allowed; delete one first");
  }
  StoredWebhook stored = store.Create(ctx.tenant, request.request_id(), spec, NewWebhookSecret(), ctx.principal, deadline);
  audit.resource_id = stored.subscription.subscription_id();
  pb::CreateWebhookSubscriptionResponse response;
  *response.mutable_subscription() = std::move(stored.subscription);
  response.set_secret(stored.secret);
  return response;
}

pb::ListWebhookSubscriptionsResponse AssessmentApp::ListWebhookSubscriptions(
    const CallContext& ctx, const pb::ListWebhookSubscriptionsRequest&, AuditTarget&) {
  RefusePlatforms(ctx);
  std::vector<std::string> clinics;
  if (ClinicBound(ctx)) clinics.assign(ctx.clinics.begin(), ctx.clinics.end());
  pb::ListWebhookSubscriptionsResponse response;
  for (auto& subscription : Webhooks().List(ctx.tenant, clinics, ctx.DeadlineCappedAt(kStoreBudget))) {
    *response.add_subscriptions() = std::move(subscription);
  }
  return response;
}

pb::UpdateWebhookSubscriptionResponse AssessmentApp::UpdateWebhookSubscription(
    const CallContext& ctx, const pb::UpdateWebhookSubscriptionRequest& request, AuditTarget& audit) {
  RefusePlatforms(ctx);
  audit.resource_id = request.subscription_id();
  WebhookChange change;
  if (!request.url().empty()) {
    ValidateUrl(request.url(), settings_.webhook_destinations);
    change.url = request.url();
  }
  if (request.has_event_kinds()) change.kinds = EventKindNames("event_kinds.kinds", request.event_kinds().kinds(), kMaxKinds);
  if (!request.description().empty()) {
    ValidateDescription(request.description());
    change.description = request.description();
  }
  switch (request.state()) {
    case pb::WEBHOOK_STATE_UNSPECIFIED:
      break;
    case pb::WEBHOOK_STATE_ACTIVE:
      change.state = "active";
      break;
    case pb::WEBHOOK_STATE_PAUSED:
      change.state = "paused";
      break;
    default:
      ThrowInvalidArgument("state", "WEBHOOK_STATE_ACTIVE (resume) or WEBHOOK_STATE_PAUSED; a subscription is "
                                    "disabled only by failing past its retry window");
  }
  ManagedSubscription(ctx, request.subscription_id());
  pb::UpdateWebhookSubscriptionResponse response;
  *response.mutable_subscription() =
      Webhooks().Update(ctx.tenant, request.subscription_id(), change, ctx.DeadlineCappedAt(kStoreBudget));
  return response;
}

pb::DeleteWebhookSubscriptionResponse AssessmentApp::DeleteWebhookSubscription(
    const CallContext& ctx, const pb::DeleteWebhookSubscriptionRequest& request, AuditTarget& audit) {
  RefusePlatforms(ctx);
  audit.resource_id = request.subscription_id();
  ManagedSubscription(ctx, request.subscription_id());
  pb::DeleteWebhookSubscriptionResponse response;
  response.set_cancelled_deliveries(
      Webhooks().Delete(ctx.tenant, request.subscription_id(), ctx.DeadlineCappedAt(kStoreBudget)));
  return response;
}

pb::RotateWebhookSecretResponse AssessmentApp::RotateWebhookSecret(const CallContext& ctx,
                                                                   const pb::RotateWebhookSecretRequest& request,
                                                                   AuditTarget& audit) {
  RefusePlatforms(ctx);
  ValidateRequestId("request_id", request.request_id());
  audit.resource_id = request.subscription_id();
  ValidateRange("overlap_seconds", request.overlap_seconds(), 0, 7 * 24 * 3600);
  const auto overlap = request.overlap_seconds() > 0 ? std::chrono::seconds(request.overlap_seconds())
                                                     : settings_.webhook_secret_overlap;
  ManagedSubscription(ctx, request.subscription_id());
  StoredWebhook stored = Webhooks().Rotate(ctx.tenant, request.subscription_id(), request.request_id(),
                                           NewWebhookSecret(), overlap, ctx.DeadlineCappedAt(kStoreBudget));
  pb::RotateWebhookSecretResponse response;
  *response.mutable_subscription() = std::move(stored.subscription);
  response.set_secret(stored.secret);
  return response;
}

pb::ListWebhookDeliveriesResponse AssessmentApp::ListWebhookDeliveries(const CallContext& ctx,
                                                                       const pb::ListWebhookDeliveriesRequest& request,
                                                                       AuditTarget& audit) {
  RefusePlatforms(ctx);
  audit.resource_id = request.subscription_id();
  ValidateRange("page_size", request.page_size(), 0, 200);
  const int page_size = request.page_size() == 0 ? 50 : request.page_size();
  std::string state;
  switch (request.state()) {
    case pb::WEBHOOK_DELIVERY_STATE_UNSPECIFIED: break;
    case pb::WEBHOOK_DELIVERY_STATE_PENDING: state = "pending"; break;
    case pb::WEBHOOK_DELIVERY_STATE_DELIVERED: state = "delivered"; break;
    case pb::WEBHOOK_DELIVERY_STATE_FAILED: state = "failed"; break;
    case pb::WEBHOOK_DELIVERY_STATE_CANCELLED: state = "cancelled"; break;
    default: ThrowInvalidArgument("state", "unknown delivery state");
  }
  const std::string scope = ctx.tenant + "\n" + request.subscription_id() + "\n" + state;
  const std::int64_t before = DeliveriesBefore(scope, request.page_token());
  ManagedSubscription(ctx, request.subscription_id());
  auto deliveries = Webhooks().Deliveries(ctx.tenant, request.subscription_id(), state, before, page_size + 1,
                                          ctx.DeadlineCappedAt(kStoreBudget));
  pb::ListWebhookDeliveriesResponse response;
  for (int i = 0; i < static_cast<int>(deliveries.size()) && i < page_size; ++i) {
    *response.add_deliveries() = std::move(deliveries[static_cast<std::size_t>(i)]);
  }
  if (static_cast<int>(deliveries.size()) > page_size) {
    response.set_next_page_token(DeliveriesToken(scope, response.deliveries(page_size - 1).delivery_id()));
  }
  return response;
}

pb::ReplayWebhookDeliveriesResponse AssessmentApp::ReplayWebhookDeliveries(
    const CallContext& ctx, const pb::ReplayWebhookDeliveriesRequest& request, AuditTarget& audit) {
  RefusePlatforms(ctx);
  audit.resource_id = request.subscription_id();
  WebhookReplayRange range;
  if (request.has_window()) {
    const auto& window = request.window();
    if (!window.has_start_time() || !window.has_end_time()) {
      ThrowInvalidArgument("window", "needs start_time and end_time");
    }
    range.start_micros = TimeUtil::TimestampToMicroseconds(window.start_time());
    range.end_micros = TimeUtil::TimestampToMicroseconds(window.end_time());
    if (range.start_micros <= 0 || range.end_micros <= range.start_micros) {
      ThrowInvalidArgument("window.end_time", "must be after start_time (both after 1970)");
    }
  } else if (request.has_events()) {
    const auto& events = request.events();
    if (events.source() != "assessment" && events.source() != "planning" && events.source() != "progress") {
      ThrowInvalidArgument("events.source", "\"assessment\", \"planning\" or \"progress\"");
    }
    range.source = events.source();
    range.after = ParseCursor("events.after_cursor", events.after_cursor());
    if (events.last_cursor().empty()) ThrowInvalidArgument("events.last_cursor", "is required");
    range.last = ParseCursor("events.last_cursor", events.last_cursor());
    if (range.last <= range.after) ThrowInvalidArgument("events.last_cursor", "must be after after_cursor");
  } else {
    ThrowInvalidArgument("range", "give a window or an events range");
  }
  const auto subscription = ManagedSubscription(ctx, request.subscription_id());
  pb::ReplayWebhookDeliveriesResponse response;
  response.set_queued(Webhooks().Replay(ctx.tenant, subscription, range, settings_.webhook_replay_max_events,
                                        ctx.DeadlineCappedAt(kStoreBudget)));
  return response;
}

}  // namespace physio::assessment
