// The headers nearly every test file parses, compiled once per build directory and
// reused by every test target (tests/CMakeLists.txt, REUSE_FROM physio_test_pch): a
// test file spent most of its compile time (7.8 of 9.9 s under the sanitizers) in
// gtest, gRPC, protobuf, httplib and the generated service headers. Each test file
// still includes what it uses; this only makes those includes cheap.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "clients.h"
#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "test_env.h"
