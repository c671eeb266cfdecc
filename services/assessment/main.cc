#include "assessment_server.h"

int main(int argc, char** argv) {
  return physio::ServiceMain("assessment", physio::assessment::AssessmentConfigKeys(), argc, argv,
                             physio::assessment::StartAssessmentService);
}
