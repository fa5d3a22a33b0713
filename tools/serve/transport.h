// The HTTP transport of `latent serve`: cpp-httplib's server, configured explicitly (thread pool,
// keep-alive, timeouts, payload limit, TCP_NODELAY), forwarding every request to a Service.
// SIGTERM and SIGINT (taken by one sigwait thread) stop accepting, let in-flight requests finish, and make serve_http return.
#pragma once

#include <cstdint>
#include <string>

#include "service.h"

namespace latent::serve {

/// Listening and connection settings.
struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                  ///< 0 picks a free port
  int http_threads = 128;           ///< cpp-httplib holds one per open keep-alive connection
  int64_t max_body_bytes = 16 << 20;
  int read_timeout_s = 5;           ///< frees the thread of a client that stalls mid-request
  int write_timeout_s = 5;
  int keep_alive_timeout_s = 5;     ///< idle keep-alive connections are closed after this
};

/// Blocks SIGTERM and SIGINT in the calling thread, so that every thread it starts afterwards
/// (compute pool, batchers, HTTP threads) blocks them too and serve_http's sigwait thread is the
/// only one that receives them. Call it before starting any thread.
void block_stop_signals();

/// Binds, prints `listening on http://HOST:PORT` as a flushed line on stdout, and serves until
/// SIGTERM or SIGINT; then drains in-flight requests, stops the service's batchers and returns 0.
/// Throws naming the address when it cannot bind.
int serve_http(Service& service, const TransportOptions& options);

}  // namespace latent::serve
