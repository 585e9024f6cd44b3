// Types of the factsask test program, version 2: struct task grows. WORKER is an anonymous
// struct known only by its typedef name; its void * ctx is stored from a
// thread's start argument, which graft-cc cannot follow (pthread_create
// calls the start routine through a pointer): graft diff must ask.
#ifndef FACTSASK_WORKER_H
#define FACTSASK_WORKER_H

#define VERSION 2

struct task {
  long id;
  long done;
  long retries;  // v2
};

typedef struct {
  int id;
  void* ctx;  // the worker's struct task
} WORKER;

#endif
