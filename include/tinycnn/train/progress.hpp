#pragma once
// fit()'s console output.
//   verbose 0: nothing.
//   verbose 1: "Epoch 3/10", then on a terminal a live bar redrawn in place with '\r'
//              ("  37/100 [=====>........] - ETA: 4s - loss: 0.4012 - accuracy: 0.8510 - 912 img/s"),
//              finished with the epoch's validation figures. When stdout is not a terminal (a log
//              file, a pipe) there are no updates and no control characters: one summary line per epoch.
//   verbose 2: one line per epoch ("Epoch 3/10 - 12s - loss: ... - val_loss: ... - 912 img/s").
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "history.hpp"

namespace tinycnn::train {

class ProgressPrinter {
 public:
  // os == nullptr: std::cout, treated as a terminal when stdout is one (isatty). Any other stream is
  // never a terminal unless set_terminal(true).
  explicit ProgressPrinter(int verbose, std::ostream* os = nullptr)
      : verbose_(verbose), os_(os ? os : &std::cout), tty_(os == nullptr && ::isatty(STDOUT_FILENO) == 1) {}
  void set_terminal(bool t) { tty_ = t; }
  bool terminal() const { return tty_; }

  void epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) {
    steps_ = steps;
    epoch_ = epoch;
    epochs_ = epochs;
    last_len_ = 0;
    start_ = last_draw_ = Clock::now();
    drawn_ = false;
    if (verbose_ == 1) *os_ << "Epoch " << epoch + 1 << '/' << epochs << '\n' << std::flush;
  }
  // After each step: `done` steps of this epoch, `images` samples seen in this epoch, running logs.
  void batch_end(int64_t done, int64_t images, const Logs& running) {
    if (verbose_ != 1 || !tty_) return;
    const auto now = Clock::now();
    if (drawn_ && done < steps_ && seconds(last_draw_, now) < 0.1) return;  // ~10 redraws a second
    last_draw_ = now;
    drawn_ = true;
    const double el = seconds(start_, now);
    std::ostringstream o;
    o << counter(done) << ' ' << bar(done);
    if (done < steps_ && done > 0) o << " - ETA: " << duration(el / static_cast<double>(done) * static_cast<double>(steps_ - done));
    else o << " - " << duration(el);
    o << format_logs(running, false) << rate(images, el);
    draw(o.str());
  }
  // At the end of the epoch (after validation): the epoch's logs (with val_ entries).
  void epoch_end(const Logs& logs, double secs, int64_t images) {
    if (verbose_ == 0) return;
    std::ostringstream o;
    if (verbose_ == 2) {
      o << "Epoch " << epoch_ + 1 << '/' << epochs_ << " - " << duration(secs) << format_logs(logs, true) << rate(images, secs);
      *os_ << o.str() << '\n' << std::flush;
      return;
    }
    o << counter(steps_) << ' ';
    if (tty_) o << bar(steps_) << ' ';
    o << "- " << duration(secs);
    if (steps_ > 0) o << ' ' << static_cast<int64_t>(secs * 1000.0 / static_cast<double>(steps_)) << "ms/step";
    o << format_logs(logs, true) << rate(images, secs);
    if (tty_) draw(o.str());
    else *os_ << o.str();
    *os_ << '\n' << std::flush;
  }
  void message(const std::string& s) {
    if (verbose_ == 0) return;
    if (tty_ && last_len_) *os_ << '\n';
    last_len_ = 0;
    *os_ << s << '\n' << std::flush;
  }

  // " - loss: 0.1234 - accuracy: 0.5000 - val_loss: ..." (training keys first, "loss" leading).
  static std::string format_logs(const Logs& logs, bool with_val) {
    std::vector<std::string> order;
    auto add_group = [&](const std::string& prefix) {
      if (logs.count(prefix + "loss")) order.push_back(prefix + "loss");
      for (const auto& kv : logs) {
        const std::string& k = kv.first;
        if (k == prefix + "loss" || k == "seconds" || k == "lr") continue;
        const bool is_val = k.rfind("val_", 0) == 0;
        if (prefix.empty() ? !is_val : is_val) order.push_back(k);
      }
    };
    add_group("");
    if (with_val) add_group("val_");
    std::ostringstream o;
    for (const auto& k : order) o << " - " << k << ": " << std::fixed << std::setprecision(4) << logs.at(k);
    return o.str();
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
  std::string counter(int64_t done) const {
    const std::string total = std::to_string(steps_);
    std::string d = std::to_string(done);
    if (d.size() < total.size()) d = std::string(total.size() - d.size(), ' ') + d;
    return d + "/" + total;
  }
  std::string bar(int64_t done) const {
    const int width = 30;
    const int fill = steps_ > 0 ? static_cast<int>(static_cast<double>(width) * static_cast<double>(done) / static_cast<double>(steps_)) : width;
    std::string b = "[";
    for (int i = 0; i < width; ++i) b += i < fill - 1 || (i == fill - 1 && done >= steps_) ? '=' : i == fill - 1 ? '>' : '.';
    return b + "]";
  }
  static std::string duration(double s) {
    std::ostringstream o;
    if (s >= 3600) o << static_cast<int64_t>(s) / 3600 << ':' << std::setw(2) << std::setfill('0') << (static_cast<int64_t>(s) % 3600) / 60
                     << ':' << std::setw(2) << static_cast<int64_t>(s) % 60;
    else if (s >= 60) o << static_cast<int64_t>(s) / 60 << ':' << std::setw(2) << std::setfill('0') << static_cast<int64_t>(s) % 60;
    else o << static_cast<int64_t>(s + 0.5) << 's';
    return o.str();
  }
  static std::string rate(int64_t images, double secs) {
    if (images <= 0 || secs <= 0) return "";
    std::ostringstream o;
    o << " - " << static_cast<int64_t>(static_cast<double>(images) / secs + 0.5) << " img/s";
    return o.str();
  }
  void draw(const std::string& line) {
    *os_ << '\r' << line;
    if (line.size() < last_len_) *os_ << std::string(last_len_ - line.size(), ' ');
    last_len_ = line.size();
    *os_ << std::flush;
  }

  int verbose_;
  std::ostream* os_;
  bool tty_;
  int64_t steps_ = 0, epoch_ = 0, epochs_ = 0;
  size_t last_len_ = 0;
  bool drawn_ = false;
  Clock::time_point start_, last_draw_;
};

}  // namespace tinycnn::train
