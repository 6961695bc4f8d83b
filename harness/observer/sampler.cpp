#include "harness/observer/sampler.hpp"

#include <algorithm>

namespace backlog_lab::observer {

std::vector<std::string> default_sampled_counters() {
  return {"TcpExtListenOverflows",
          "TcpExtListenDrops",
          "TcpExtTCPSynRetrans",
          "TcpPassiveOpens",
          "TcpActiveOpens",
          "TcpExtTCPReqQFullDrop",
          "TcpExtTCPReqQFullDoCookies",
          "TcpExtSyncookiesSent",
          "TcpOutRsts",
          "TcpExtTCPAbortOnData",
          "TcpExtEmbryonicRsts",
          "TcpEstabResets",
          "TcpAttemptFails",
          "TcpExtTCPTimeouts"};
}

const listener_track* timeline::find_listener(std::string_view ns, const endpoint& local) const {
  for (const auto& l : listeners)
    if (l.local == local && namespaces[l.ns] == ns) return &l;
  return nullptr;
}

int timeline::counter_index(std::string_view name) const {
  for (std::size_t i = 0; i < counter_names.size(); ++i)
    if (counter_names[i] == name) return static_cast<int>(i);
  return -1;
}

sampler::sampler(net::io_context& io, const std::vector<sampler_target>& targets,
                 sampler_options options)
    : timer_(io) {
  timeline_.interval = options.interval;
  timeline_.counter_names = std::move(options.counters);
  targets_.reserve(targets.size());
  for (const auto& t : targets) {
    timeline_.namespaces.push_back(t.name);
    targets_.push_back(target_state{census_reader(t.ns), counter_reader(t.ns), {}, {}, {}});
    targets_.back().counters.read(targets_.back().baseline);
  }
  start_ = std::chrono::steady_clock::now();
}

void sampler::start() {
  for (auto& t : targets_)
    t.counters.read(t.baseline);
  start_ = next_ = std::chrono::steady_clock::now();
  running_ = true;
  take_sample(0); // the baseline moment itself
  do_wait();
}

void sampler::stop() {
  running_ = false;
  timer_.cancel();
}

void sampler::do_wait() {
  next_ += timeline_.interval;
  // If a sample ran late (a slow census, a busy machine), skip the missed ticks rather than
  // firing a burst of back-to-back samples.
  auto now = std::chrono::steady_clock::now();
  while (next_ <= now)
    next_ += timeline_.interval;
  timer_.expires_at(next_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    // Checked before touching `this`: a cancelled wait may outlive the sampler.
    if (ec == net::error::operation_aborted) return;
    on_wait(ec);
  });
}

void sampler::on_wait(const boost::system::error_code& ec) {
  if (ec || !running_) return;
  sample_now();
  do_wait();
}

std::uint32_t sampler::track(std::size_t ns, const listener_summary& l, double t_ms) {
  for (std::size_t i = 0; i < timeline_.listeners.size(); ++i) {
    const auto& t = timeline_.listeners[i];
    if (t.ns == ns && t.local == l.local) return static_cast<std::uint32_t>(i);
  }
  listener_track t;
  t.ns = ns;
  t.local = l.local;
  t.v6only = l.v6only;
  t.first_seen_ms = t_ms;
  timeline_.listeners.push_back(t);
  return static_cast<std::uint32_t>(timeline_.listeners.size() - 1);
}

void sampler::sample_now() {
  take_sample(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
}

void sampler::take_sample(double t_ms) {
  sample s;
  s.t_ms = t_ms;
  s.namespaces.resize(targets_.size());

  // Sample-and-hold: whatever a listener showed at its previous sample lasted until now.
  for (auto& t : timeline_.listeners) {
    if (t.present && t.last_full) t.time_full_ms += s.t_ms - t.last_seen_ms;
    t.present = false;
  }

  for (std::size_t i = 0; i < targets_.size(); ++i) {
    target_state& target = targets_[i];
    target.sockets.read(target.scratch, census_options{.summary_only = true});
    target.counters.read(target.current);
    namespace_point& point = s.namespaces[i];
    point.totals = target.scratch.totals;
    point.unaccepted_close_wait = target.scratch.unaccepted_close_wait;
    point.counters.reserve(timeline_.counter_names.size());
    for (const auto& name : timeline_.counter_names)
      point.counters.push_back(target.current.value_or_zero(name) -
                               target.baseline.value_or_zero(name));
    for (const listener_summary& l : target.scratch.listeners) {
      std::uint32_t idx = track(i, l, s.t_ms);
      listener_track& t = timeline_.listeners[idx];
      t.present = true;
      t.backlog = l.backlog;
      t.v6only = l.v6only;
      t.peak_accept_queue = std::max(t.peak_accept_queue, l.accept_queue);
      t.last_full = l.full;
      t.drops = l.drops;
      t.last_seen_ms = s.t_ms;
      if (l.full && !t.first_full_ms) t.first_full_ms = s.t_ms;
      s.listeners.push_back({idx, l.accept_queue, l.backlog, l.drops});
    }
  }
  timeline_.samples.push_back(std::move(s));
}

} // namespace backlog_lab::observer
