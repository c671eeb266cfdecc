#include "expected_course.h"

#include <array>
#include <cmath>
#include <utility>

namespace physio::progress {

namespace {
std::string Whole(double value) { return std::to_string(static_cast<long>(std::lround(value))); }

std::string OneDecimal(double value) {
  std::string text = std::to_string(std::round(value * 10) / 10);
  return text.substr(0, text.find('.') + 2);
}

// da Costa et al., CMAJ 2012 (33 cohorts, 11,166 people): mean pain out of 100 at baseline
// and at 6, 26 and 52 weeks. Acute cohorts 52, 23, 12, 6; persistent cohorts 51, 33, 26, 23.
constexpr std::array<std::pair<int, double>, 3> kRecentOnsetCourse{{{6, 23.0 / 52}, {26, 12.0 / 52}, {52, 6.0 / 52}}};
constexpr std::array<std::pair<int, double>, 3> kPersistentCourse{{{6, 33.0 / 51}, {26, 26.0 / 51}, {52, 23.0 / 51}}};
}  // namespace

CourseBasis CourseBasisOf(std::optional<int> episode_days_at_assessment) {
  if (!episode_days_at_assessment) return CourseBasis::kUnknown;
  return *episode_days_at_assessment < 42 ? CourseBasis::kRecentOnset : CourseBasis::kPersistent;
}

std::optional<double> TypicalPainFraction(CourseBasis basis, int week) {
  if (basis == CourseBasis::kUnknown || week < 6) return std::nullopt;
  const auto& course = basis == CourseBasis::kRecentOnset ? kRecentOnsetCourse : kPersistentCourse;
  if (week >= course.back().first) return course.back().second;
  for (size_t i = 0; i + 1 < course.size(); ++i) {
    const auto [from_week, from] = course[i];
    const auto [to_week, to] = course[i + 1];
    if (week <= to_week) return from + (to - from) * (week - from_week) / (to_week - from_week);
  }
  return course.back().second;
}

ExpectedCourse BuildExpectedCourse(const CourseInput& in) {
  ExpectedCourse course;
  course.basis = CourseBasisOf(in.episode_days_at_assessment);
  switch (course.basis) {
    case CourseBasis::kRecentOnset:
      course.summary =
          "Back pain that started recently usually improves markedly in the first 6 weeks: in studies of thousands of "
          "people, average pain fell from about 5 to about 2 out of 10 by 6 weeks, then kept easing more slowly (about "
          "1 out of 10 by 6 months).";
      break;
    case CourseBasis::kPersistent:
      course.summary =
          "Back pain that has lasted 6 weeks or more also improves most in the first 6 weeks, but less: in studies of "
          "thousands of people, average pain fell from about 5 to about 3 out of 10 by 6 weeks and eased only a little "
          "more over the following year. Some pain often remains; the aim is to do more of what matters to you.";
      break;
    case CourseBasis::kUnknown:
      course.summary =
          "Back pain like yours usually gets better, and most of the improvement tends to come in the first weeks of "
          "treatment.";
      break;
  }
  course.summary +=
      " With care matched to your needs, people improved on average by about 5 points on the 24-point Roland-Morris "
      "disability scale over 4 months. In everyday care about 6 in 10 people reach a clear drop in pain (2 points on "
      "the 0-10 scale) and about 3 in 10 a clear change on the Oswestry disability score.";
  switch (in.group) {
    case CourseGroup::kLowRisk:
      course.summary += " Your answers suggest a low risk of long-term problems: advice and your own exercise are "
                        "usually enough.";
      break;
    case CourseGroup::kMediumRisk:
      course.summary += " Your plan is a physiotherapy package of exercise with hands-on treatment where it helps.";
      break;
    case CourseGroup::kHighRisk:
      course.summary += " Answers like yours mean recovery can take longer, so your plan also works on how pain "
                        "affects your daily life and mood, which helps people like you recover.";
      break;
    case CourseGroup::kUnknown: break;
  }
  switch (in.phase) {
    case CoursePhase::kSymptomModulation:
      course.summary += " The first weeks aim to calm the pain down; exercise builds up as it settles.";
      break;
    case CoursePhase::kMovementControl:
      course.summary += " The plan starts with moving with control and confidence, then builds strength and fitness.";
      break;
    case CoursePhase::kFunctionOptimisation:
      course.summary += " The plan builds strength and fitness for everything you want to get back to.";
      break;
    case CoursePhase::kUnknown: break;
  }
  course.sources = {"Hill et al., Lancet 2011 (stratified care: Roland-Morris 4.7 points better at 4 months)",
                    "Spine 2016 real-world cohort (28.5% reached the Oswestry MCID, 59-60% the pain MCID)",
                    "clinical reference: about 71% of the functional change in the first 45% of an episode"};
  if (course.basis != CourseBasis::kUnknown) {
    course.sources.push_back(
        "da Costa et al., CMAJ 2012 (mean pain /100 at baseline, 6, 26, 52 weeks: acute 52, 23, 12, 6; persistent 51, "
        "33, 26, 23)");
  }
  for (int week : in.review_weeks) {
    CourseMilestone milestone{
        week, week <= 2 ? "first check: an early sign of improvement in pain or daily activities is expected"
              : week >= in.expected_weeks && in.expected_weeks > 0
                  ? "end-of-plan review: most people have improved clearly by now"
                  : "progress check: a clear improvement on at least one measure is expected",
        std::nullopt};
    const auto fraction = TypicalPainFraction(course.basis, week);
    if (fraction && in.pain) {
      milestone.typical_pain = std::round(in.pain->baseline * *fraction * 10) / 10;
      milestone.expectation += "; people who started at your level of pain were typically at about " +
                               OneDecimal(*milestone.typical_pain) + " out of 10 by then";
    }
    course.milestones.push_back(std::move(milestone));
  }

  std::string now;
  if (in.pain) {
    now += "Your pain has gone from " + Whole(in.pain->baseline) + " to " + Whole(in.pain->now) + " out of 10";
    const auto fraction = TypicalPainFraction(course.basis, in.weeks_since_start);
    if (fraction) {
      now += " (people who started where you did were typically at about " + OneDecimal(in.pain->baseline * *fraction) +
             " by now)";
    }
    now += ". ";
  }
  if (in.rmdq) {
    now += "Your Roland-Morris score has gone from " + Whole(in.rmdq->baseline) + " to " + Whole(in.rmdq->now) +
           " (lower is better). ";
  } else if (in.odi) {
    now += "Your Oswestry score has gone from " + Whole(in.odi->baseline) + "% to " + Whole(in.odi->now) +
           "% (lower is better). ";
  }
  if (in.plan_suspended || in.deteriorated || in.open_alerts > 0) {
    // Issue 26: never "on track" while the plan is suspended, the patient is worse, or the clinic has an alert.
    course.status = CourseStatus::kNeedsReview;
    now += in.plan_suspended ? "Your plan is paused until your physiotherapist has reviewed it: follow the advice you "
                               "were given and contact your clinic if you have not heard from them."
           : in.deteriorated ? "Your symptoms are worse than when you started, so your physiotherapist will review your "
                               "plan with you; contact your clinic if you have not heard from them."
                             : "Your clinic has been told about something you reported and will review your plan with "
                               "you; contact them if you have not heard from them.";
  } else if (in.recovered) {
    course.status = CourseStatus::kRecovered;
    now += "You have recovered by the usual definition (no pain and very little difficulty); your physiotherapist "
           "will talk with you about finishing the plan and staying active.";
  } else if (in.responder == ResponderStatus::kResponder || in.early_response == EarlyResponse::kOnTrack) {
    course.status = CourseStatus::kOnTrack;
    now += "You are on track: you have improved as expected so far.";
  } else if (in.responder == ResponderStatus::kNonResponder || in.early_response == EarlyResponse::kSlow) {
    course.status = CourseStatus::kSlowerThanExpected;
    now += "Your improvement is slower than usual so far. That is common and does not mean something is wrong; your "
           "physiotherapist will review your plan with you.";
  } else {
    course.status = CourseStatus::kTooEarly;
    now += "It is too early to tell: the first check is at about 2 weeks.";
  }
  course.where_now = now;
  return course;
}

}  // namespace physio::progress
