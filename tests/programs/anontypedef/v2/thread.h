#pragma once
// An anonymous struct known only by its typedef name; v2 adds served.
typedef struct {
  int id;
  void* ctx;  // what the thread works on: never a struct of the program
  long served;
} THREAD;
