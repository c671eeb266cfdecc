#include "progress_server.h"

int main(int argc, char** argv) {
  return physio::ServiceMain("progress", physio::progress::ProgressConfigKeys(), argc, argv,
                             physio::progress::StartProgressService);
}
