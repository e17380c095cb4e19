#pragma once
// Ctrl-C during fit(): SigintGuard installs a SIGINT handler for its lifetime (fit() holds one while
// it trains) and restores the previous disposition afterwards. The handler only sets a
// sig_atomic_t flag; fit() checks it after every optimizer step, finishes that step, writes a
// checkpoint and returns. A second Ctrl-C before fit() gets there restores the previous disposition
// and re-raises the signal, so a stuck run can still be killed.
#include <csignal>

#include <signal.h>

namespace tinycnn::train {

namespace detail {
inline volatile std::sig_atomic_t g_sigint_flag = 0;
inline struct sigaction g_sigint_previous {};
inline bool g_sigint_installed = false;

inline void tinycnn_sigint_handler(int sig) {
  if (g_sigint_flag) {  // second Ctrl-C: give up waiting for the step
    sigaction(sig, &g_sigint_previous, nullptr);
    raise(sig);
    return;
  }
  g_sigint_flag = 1;
}
}  // namespace detail

// True once SIGINT arrived while a SigintGuard was active.
inline bool interrupt_requested() { return detail::g_sigint_flag != 0; }
inline void clear_interrupt() { detail::g_sigint_flag = 0; }

class SigintGuard {
 public:
  // install=false makes a no-op guard (fit(..., handle_sigint = false)).
  explicit SigintGuard(bool install = true) {
    if (!install || detail::g_sigint_installed) return;  // nested fit(): the outer guard owns it
    struct sigaction sa {};
    sa.sa_handler = detail::tinycnn_sigint_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, &detail::g_sigint_previous) == 0) {
      detail::g_sigint_installed = true;
      owner_ = true;
      clear_interrupt();
    }
  }
  ~SigintGuard() {
    if (!owner_) return;
    sigaction(SIGINT, &detail::g_sigint_previous, nullptr);
    detail::g_sigint_installed = false;
    clear_interrupt();
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  bool active() const { return owner_; }

 private:
  bool owner_ = false;
};

}  // namespace tinycnn::train
