#pragma once
// A fake pod's own counters, apart from the backend itself, so that results (run_result, the
// reports) name them without the actor's header.
#include <cstdint>
#include <string>

namespace backlog_lab::backends {

/// What the backend did, as its own counters (the kernel's view comes from ss/nstat).
struct backend_stats {
  uint64_t accepted = 0;         ///< connections taken from the accept queue
  uint64_t requests_served = 0;  ///< http: 200 responses written; grpc-preface: prefaces written
  uint64_t bad_requests = 0;     ///< http: 400/431/501 answers (then the connection is closed)
  uint64_t bytes_in = 0;         ///< bytes read from connections
  uint64_t bytes_out = 0;        ///< bytes written to connections
  uint64_t active = 0;           ///< accepted connections still open now
  uint64_t resets_sent = 0;      ///< connections closed with SO_LINGER 0 by reset_all()
  uint64_t accept_errors = 0;    ///< accept() failures other than cancellation (EMFILE, ...)
  uint64_t session_failures = 0; ///< connections ended by an unexpected exception (a bug)
  std::string first_failure;     ///< what the first of those said
};

} // namespace backlog_lab::backends
