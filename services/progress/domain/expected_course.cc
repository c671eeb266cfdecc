#include "expected_course.h"

#include <cmath>

namespace physio::progress {

namespace {
std::string Whole(double value) { return std::to_string(static_cast<long>(std::lround(value))); }
}  // namespace

ExpectedCourse BuildExpectedCourse(const CourseInput& in) {
  ExpectedCourse course;
  course.summary =
      "Back pain like yours usually gets better, and most of the improvement tends to come in the first weeks of "
      "treatment. With care matched to your needs, people improved on average by about 5 points on the 24-point "
      "Roland-Morris disability scale over 4 months. In everyday care about 6 in 10 people reach a clear drop in "
      "pain (2 points on the 0-10 scale) and about 3 in 10 a clear change on the Oswestry disability score.";
  switch (in.group) {
    case CourseGroup::kLowRisk:
      course.summary += " Your answers suggest a low risk of long-term problems: advice and your own exercise are "
                        "usually enough.";
      break;
    case CourseGroup::kMediumRisk:
      course.summary += " Your plan is a physiotherapy package of exercise with hands-on treatment where it helps.";
      break;
    case CourseGroup::kHighRisk:
      course.summary += " Your plan also works on how pain affects your daily life and mood, which helps people "
                        "with answers like yours recover.";
      break;
    case CourseGroup::kUnknown: break;
  }
  course.sources = {"Hill et al., Lancet 2011 (stratified care: Roland-Morris 4.7 points better at 4 months)",
                    "Spine 2016 real-world cohort (28.5% reached the Oswestry MCID, 59-60% the pain MCID)",
                    "clinical reference: about 71% of the functional change in the first 45% of an episode"};
  for (int week : in.review_weeks) {
    course.milestones.push_back(
        {week, week <= 2 ? "first check: an early sign of improvement in pain or daily activities is expected"
               : week >= in.expected_weeks && in.expected_weeks > 0
                   ? "end-of-plan review: most people have improved clearly by now"
                   : "progress check: a clear improvement on at least one measure is expected"});
  }

  std::string now;
  if (in.pain) {
    now += "Your pain has gone from " + Whole(in.pain->baseline) + " to " + Whole(in.pain->now) + " out of 10. ";
  }
  if (in.rmdq) {
    now += "Your Roland-Morris score has gone from " + Whole(in.rmdq->baseline) + " to " + Whole(in.rmdq->now) +
           " (lower is better). ";
  } else if (in.odi) {
    now += "Your Oswestry score has gone from " + Whole(in.odi->baseline) + "% to " + Whole(in.odi->now) +
           "% (lower is better). ";
  }
  if (in.recovered) {
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
