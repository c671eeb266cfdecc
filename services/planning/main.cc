#include "planning_server.h"

int main(int argc, char** argv) {
  return physio::ServiceMain("planning", physio::planning::PlanningConfigKeys(), argc, argv,
                             physio::planning::StartPlanningService);
}
