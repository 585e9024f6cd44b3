// Thread-local counters: each thread keeps its own, across updates.
#pragma once
extern __thread long shared_ticks;  // defined in program.h, used from tls.c (initial-exec)
long step(void);                    // tls.c: counts one step of the calling thread

// Built with -DLIBRARY_TICKS, step() also counts in a shared library's thread-local.
#ifdef LIBRARY_TICKS
extern __thread long library_ticks;  // libticks.so's (initial-exec GOT entry)
#define LIBRARY_STEP(n) ((library_ticks += (n)) * 100000)
#else
#define LIBRARY_STEP(n) 0
#endif
