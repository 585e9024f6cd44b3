// Types of the annot test program, version 1. graft sees no typed pointer to
// struct item (only void *) nor to the blobs in struct stash (a void * and an
// integer), and struct cell's union holds a typed pointer to a struct blob.
#ifndef ANNOT_TYPES_H
#define ANNOT_TYPES_H

#define VERSION 1

struct item {  // 16 bytes: malloc gives it 24
  long count;
  int level;
};

struct blob {  // 16 bytes: malloc gives it 24
  long a;
  long b;
};

struct slot {  // a generic hash table: the value is a struct item *, as the program casts it
  const char* key;
  void* value;
};

struct table {
  struct slot* slots;  // a heap array of nslots
  unsigned nslots;
  unsigned used;
};

enum kind { KIND_EMPTY, KIND_NUMBER, KIND_BLOB, KIND_ODD };

struct cell {  // a tagged union: kind says which member is live
  enum kind kind;
  union {
    long number;
    struct blob* blob;
  } u;
};

struct stash {
  void* blob;            // a struct blob *
  unsigned long handle;  // a struct blob * too, kept as an integer
};

#endif
