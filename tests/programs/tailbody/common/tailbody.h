// Test target for a struct ending in a flexible array member whose
// elements live on (GRAFT_TAIL): messages with their text after the header,
// in the same allocation. v2 grows the header (the elements follow it into
// the new layout's flexible array); v3 makes the array a pointer to the same
// bytes, kept right after the struct (beanstalkd 1.12's job body). The same
// source in every version (vN/main.c defines VERSION). One command per line:
//   add TEXT  a message
//   dump      every message, id:len:text, the same words in every version
//   v         the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct msg {
  long id;
#if VERSION == 2
  long stamp;  // v2: the header grows
#endif
  int len;
#if VERSION == 3
  char* body;  // v3: the text, right after the struct
#else
  char body[];
#endif
};

struct msg* msgs[16];
int count;

static struct msg* make(const char* text) {
  const size_t n = strlen(text) + 1;
  struct msg* m = malloc(sizeof *m + n);
  m->id = 100 + count;
  m->len = (int)n - 1;
#if VERSION == 3
  m->body = (char*)(m + 1);
#endif
  memcpy(m->body, text, n);
  return m;
}

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "add ", 4) == 0 && count < 16) {
      msgs[count] = make(line + 4);
      count++;
      printf("added\n");
    } else if (strcmp(line, "dump") == 0) {
      for (int k = 0; k < count; k++) printf("%s%ld:%d:%s", k ? " " : "", msgs[k]->id, msgs[k]->len, msgs[k]->body);
      printf("\n");
    } else if (strcmp(line, "v") == 0) {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fflush(stdout);
  }
  return 0;
}
