#include "transport.h"

#include <fmt/format.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace latent::serve {

namespace {

// Debian's compiled cpp-httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG), so a
// burst of new connections overflows the accept queue and clients wait out SYN retransmits (1 s
// each: 1000 connections took 26 s). Calling listen() again on a listening socket only raises
// its backlog; the socket is found among our descriptors by its state and port.
void raise_backlog(int port) {
  for (int fd = 3; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t size = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) continue;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    const int bound = address.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port)
                      : address.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port)
                                                     : -1;
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

void reply_with(httplib::Response& res, HttpReply&& reply) {
  res.status = reply.status;
  for (auto& [key, value] : reply.headers) res.set_header(key, value);
  res.set_content(std::move(reply.body), reply.content_type.c_str());
}

/// The kernel thread id of serve_http's sigwait thread, for the forwarding handler (0: none yet).
std::atomic<pid_t> watcher_tid{0};

/// Threads started before cmd_serve blocked the stop signals (OpenBLAS starts its own when the
/// library loads) still take them; this handler, async-signal-safe, sends the signal on to the
/// sigwait thread instead of letting it kill the process.
extern "C" void forward_stop_signal(int signal) {
  const int saved = errno;
  if (const pid_t tid = watcher_tid.load()) ::syscall(SYS_tgkill, ::getpid(), tid, signal);
  errno = saved;
}

/// SIGTERM and SIGINT, the signals that stop the server.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void block_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve_http(Service& service, const TransportOptions& options) {
  httplib::Server server;
  const size_t threads = static_cast<size_t>(options.http_threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_keep_alive_max_count(1u << 30);
  server.set_keep_alive_timeout(options.keep_alive_timeout_s);
  server.set_read_timeout(options.read_timeout_s, 0);
  server.set_write_timeout(options.write_timeout_s, 0);
  server.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  server.set_tcp_nodelay(true);

  auto handler = [&service](const httplib::Request& req, httplib::Response& res) {
    HttpRequest request;
    request.method = req.method;
    request.path = req.path;
    request.body = req.body;
    auto header = [&req](const char* key) -> std::string_view {
      auto it = req.headers.find(key);
      return it == req.headers.end() ? std::string_view() : std::string_view(it->second);
    };
    request.content_type = header("Content-Type");
    request.authorization = header("Authorization");
    request.inference_header_length = header("Inference-Header-Content-Length");
    request.if_none_match = header("If-None-Match");
    reply_with(res, service.handle(request));
  };
  // Every method and path reaches the service, which answers 404 and 405 itself.
  server.Get(".*", handler);
  server.Post(".*", handler);
  server.Put(".*", handler);
  server.Delete(".*", handler);
  server.Patch(".*", handler);
  server.Options(".*", handler);
  // Replies httplib makes before routing (413 payload too large, 400 unparsable request) get a JSON body.
  server.set_error_handler(httplib::Server::HandlerWithResponse([&service](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // the service's own reply
    HttpReply reply;
    reply.status = res.status;
    service.transport_reply(req.method, req.path, reply);
    reply_with(res, std::move(reply));
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(R"({"error":"internal error"})", "application/json");
  });

  int port = options.port;
  if (port == 0) port = server.bind_to_any_port(options.host);
  else if (!server.bind_to_port(options.host, port)) port = -1;
  if (port < 0)
    throw std::runtime_error(fmt::format("[serve] cannot listen on {}:{} (in use, or not an address of this machine)", options.host,
                                         options.port));

  raise_backlog(port);

  // The stop signals are blocked in every thread latent starts (cmd_serve blocks them before it
  // starts any, and threads inherit the mask) and taken by one thread in sigwait, which then calls
  // httplib's stop() (not async-signal-safe, so never from a handler). A signal that lands on a
  // thread started before that (OpenBLAS's) is forwarded to the sigwait thread by a handler. The
  // old way, a handler writing to a self-pipe, lost SIGTERM under ThreadSanitizer: TSan runs a
  // handler only when its thread next passes through an intercepted call, and the thread the
  // signal landed on could wait indefinitely in a system call that SA_RESTART restarts (the main
  // thread's accept()) or spin on atomics (the compute pool), so the server never stopped
  // (tests/run_tsan.sh serve).
  block_stop_signals();
  std::signal(SIGPIPE, SIG_IGN);
  std::atomic<bool> stopping{false}, listen_ended{false}, waiting{false};
  std::thread watcher([&server, &stopping, &listen_ended, &waiting] {
    watcher_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    waiting.store(true);
    const sigset_t set = stop_signals();
    int signal = 0;
    while (sigwait(&set, &signal) != 0) {
    }
    // Either a real SIGTERM/SIGINT, or the wake-up below after listening ended by itself.
    if (stopping.exchange(true)) return;
    // httplib's stop() does nothing until listen_after_bind has begun (a signal that came while
    // the models loaded waited, blocked, and arrives here at once).
    while (!server.is_running() && !listen_ended.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server.stop();
  });
  while (!waiting.load()) std::this_thread::yield();
  struct sigaction action {};
  action.sa_handler = forward_stop_signal;
  action.sa_flags = SA_RESTART;
  sigfillset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  fmt::print("listening on http://{}:{}\n", options.host, port);
  std::fflush(stdout);
  // Returns once stop() closed the socket and the pool finished the requests it held.
  server.listen_after_bind();
  listen_ended.store(true);
  // Wake the watcher if listening ended for another reason: a signal aimed at its thread, which
  // its sigwait takes (if a real signal got there first, this one dies with the thread).
  if (!stopping.exchange(true)) ::syscall(SYS_tgkill, ::getpid(), watcher_tid.load(), SIGTERM);
  watcher.join();
  watcher_tid.store(0);
  action.sa_handler = SIG_DFL;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  service.stop();
  fmt::print(stderr, "latent serve: stopped\n");
  return 0;
}

}  // namespace latent::serve
