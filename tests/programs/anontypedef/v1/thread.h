#pragma once
// An anonymous struct known only by its typedef name.
typedef struct {
  int id;
  void* ctx;  // what the thread works on: never a struct of the program
} THREAD;
