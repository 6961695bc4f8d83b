#include "proxy_sim/rule_sync_thread.hpp"

#include <exception>

namespace backlog_lab::proxy_sim {

rule_sync_thread::~rule_sync_thread() {
  if (pending_) pending_->taken = true;
  join();
}

void rule_sync_thread::join() noexcept {
  if (thread_.joinable()) thread_.join();
}

void rule_sync_thread::run(job work, completion done) {
  join(); // the previous job's thread has ended: its completion ran
  auto p = std::make_shared<pending>();
  p->done = std::move(done);
  pending_ = p;
  busy_ = true;
  // Outstanding work for the io_context: run() does not return while a sync is in flight.
  thread_ =
      std::thread([this, p, work = std::move(work), guard = net::make_work_guard(io_)]() mutable {
        try {
          p->error = work();
        } catch (const std::exception& e) {
          p->error = e.what();
        } catch (...) {
          p->error = "unknown exception";
        }
        // `this` is alive while the completion may still run: the destructor marks it taken
        // and joins this thread first.
        net::post(io_, [this, p] {
          if (p->taken.exchange(true)) return;
          busy_ = false;
          p->done(p->error);
        });
        guard.reset(); // after the post: the io_context has the completion to run
      });
}

void rule_sync_thread::finish() {
  if (!busy_) return;
  join(); // the job is done; its posted completion will find it taken
  auto p = pending_;
  if (p->taken.exchange(true)) return;
  busy_ = false;
  p->done(p->error);
}

} // namespace backlog_lab::proxy_sim
