// Test target in C++: virtual dispatch and a template reach the new code.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

struct Shape {
  virtual ~Shape() = default;
  virtual double area() const = 0;
};

struct Square : Shape {
  double side;
  explicit Square(double s) : side(s) {}
  double area() const override { return side * side; }
};

template <typename T>
T twice(T v) { return v + v; }

std::atomic<long> rounds{0};

long describe(const Shape& shape) { return static_cast<long>(twice(shape.area())); }

int main() {
  std::vector<std::thread> pool;
  for (int i = 0; i < 3; ++i)
    pool.emplace_back([] {
      Square square(2);
      for (;;) {
        rounds += describe(square) > 0;
        usleep(300);
      }
    });
  std::unique_ptr<Shape> shape = std::make_unique<Square>(3);
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) std::cout << describe(*shape) << std::endl;
}
