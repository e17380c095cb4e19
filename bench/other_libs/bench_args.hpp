// Command line and clock shared by the dlib and tiny-dnn model2 programs (CLI11, as everywhere in
// the project): [--batch 32] [--steps N] [--threads T], each >= 1.
#pragma once
#include <CLI/CLI.hpp>

#include <chrono>

struct BenchArgs {
  int batch = 32;
  int steps = 5;
  int threads = 1;
};

// Exits with CLI11's message and code on --help or a bad argument.
inline BenchArgs parse_bench_args(int argc, char** argv, const char* what) {
  BenchArgs a;
  CLI::App app{what};
  app.add_option("--batch", a.batch, "images per step (default 32)")->check(CLI::PositiveNumber);
  app.add_option("--steps", a.steps, "timed steps after one warm-up (default 5)")->check(CLI::PositiveNumber);
  app.add_option("--threads", a.threads, "threads (default 1)")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return a;
}

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}
