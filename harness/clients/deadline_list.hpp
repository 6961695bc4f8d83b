#pragma once
// Connections waiting on one kind of timeout (connect, response). All share one timeout, so
// appending at "now" keeps the list sorted by deadline: one timer armed for the head suffices,
// and a connection that finishes early unlinks itself in O(1), with no heap and no allocation.
#include <chrono>

namespace backlog_lab::clients {

class deadline_list;

/// A member of at most one deadline_list (a connection derives from it).
struct deadline_entry {
  deadline_entry* prev = nullptr;
  deadline_entry* next = nullptr;
  deadline_list* list = nullptr; ///< the list it is on, or nullptr
  std::chrono::steady_clock::time_point deadline{};
};

/// An intrusive list of entries in deadline order, all with the same timeout.
class deadline_list {
public:
  using clock = std::chrono::steady_clock;

  explicit deadline_list(clock::duration timeout) : timeout_(timeout) {}
  deadline_list(const deadline_list&) = delete;
  deadline_list& operator=(const deadline_list&) = delete;

  /// Appends `e` (on no list) with the deadline `now` + the timeout.
  void push(deadline_entry& e, clock::time_point now) noexcept;
  /// Takes `e` off the list it is on, if any.
  static void unlink(deadline_entry& e) noexcept;
  /// The entry with the earliest deadline, or nullptr.
  deadline_entry* head() const noexcept { return head_; }
  /// Unlinks and returns the head if its deadline is at or before `now`, else nullptr.
  deadline_entry* pop_due(clock::time_point now) noexcept;
  clock::duration timeout() const noexcept { return timeout_; }

private:
  clock::duration timeout_;
  deadline_entry* head_ = nullptr;
  deadline_entry* tail_ = nullptr;
};

inline void deadline_list::push(deadline_entry& e, clock::time_point now) noexcept {
  e.deadline = now + timeout_;
  e.list = this;
  e.next = nullptr;
  e.prev = tail_;
  (tail_ ? tail_->next : head_) = &e;
  tail_ = &e;
}

inline void deadline_list::unlink(deadline_entry& e) noexcept {
  deadline_list* list = e.list;
  if (!list) return;
  (e.prev ? e.prev->next : list->head_) = e.next;
  (e.next ? e.next->prev : list->tail_) = e.prev;
  e.prev = e.next = nullptr;
  e.list = nullptr;
}

inline deadline_entry* deadline_list::pop_due(clock::time_point now) noexcept {
  deadline_entry* e = head_;
  if (!e || e->deadline > now) return nullptr;
  unlink(*e);
  return e;
}

} // namespace backlog_lab::clients
