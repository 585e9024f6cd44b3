// Test target for moving a C++ member function's never-returning loop into
// its new body: Server::run() keeps RAII locals across the read() it waits
// in (a short std::string, which points into itself, a std::vector and a
// std::unique_ptr). Workers read single bytes from their pipe. One command
// per line on stdin:
//   wake     sends a byte to every worker and waits for their answers
//   report   each worker's "name:count:last" as it last published them
//   v        the version
// v2 changes the loop's body: it counts by 10 and keeps at most 1000 bytes.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

constexpr int kWorkers = 2;
constexpr int kStep = 1;

static int answers[2];
static char published[kWorkers][64];

class Server {
 public:
  Server(int id, int fd) : id_(id), fd_(fd) {}
  // Never returns: waits in read() for the life of the process.
  __attribute__((noinline)) void run() {
    std::string name = "w" + std::to_string(id_);  // short: its characters are inside the object
    std::vector<int> seen;
    auto total = std::make_unique<long>(0);
    for (;;) {
      char c;
      if (read(fd_, &c, 1) != 1) return;
      *total += kStep;
      seen.push_back(c);
      std::snprintf(published[id_], sizeof published[id_], "%s:%ld:%zu", name.c_str(), *total, seen.size());
      if (write(answers[1], &c, 1) != 1) return;
    }
  }

 private:
  int id_, fd_;
};

static int requests[kWorkers][2];

static void* start(void* arg) {
  const long id = reinterpret_cast<long>(arg);
  Server server(static_cast<int>(id), requests[id][0]);
  server.run();
  return nullptr;
}

__attribute__((noinline)) static int version() { return 1; }

int main() {
  if (pipe(answers) != 0) return 1;
  for (long i = 0; i < kWorkers; i++) {
    pthread_t t;
    if (pipe(requests[i]) != 0 || pthread_create(&t, nullptr, start, reinterpret_cast<void*>(i)) != 0) return 1;
  }
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  char line[64];
  while (std::fgets(line, sizeof line, stdin)) {
    char c = 1;
    if (std::strncmp(line, "wake", 4) == 0) {
      for (int w = 0; w < kWorkers; w++)
        if (write(requests[w][1], &c, 1) != 1) return 1;
      for (int w = 0; w < kWorkers; w++)
        if (read(answers[0], &c, 1) != 1) return 1;
      std::printf("woken\n");
    } else if (std::strncmp(line, "report", 6) == 0) {
      std::printf("%s %s\n", published[0], published[1]);
    } else {
      std::printf("%d\n", version());
    }
    std::fflush(stdout);
  }
  return 0;
}
