// A shared library's thread-local variable: the test program, built with
// -DLIBRARY_TICKS, reaches it through an initial-exec GOT entry.
__thread long library_ticks;
