// A program linked against the module (not dlopen'ed) that reads the
// module's exported counter itself: built without PIC, it gets the counter
// by a copy relocation, and the module's own code then uses that copy,
// through its GOT, not the one in the module's data. Built with
// -DINTERPOSE, it also defines mod_version, and the dynamic linker binds the
// module's own calls to mod_version (through its PLT) to this one.
#include <stdio.h>
#include <string.h>

extern int mod_stored;
#ifdef INTERPOSE
int mod_version(void) { return 7; }
#else
int mod_version(void);
#endif
int mod_put(int key, int value);
int mod_get(int key, char *out, int size);

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  char line[512], out[256];
  int key = 0, value = 0;
  while (fgets(line, sizeof line, stdin)) {
    if (strcmp(line, "stored\n") == 0) {
      printf("%d\n", mod_stored);
    } else if (strcmp(line, "version\n") == 0) {
      printf("%d\n", mod_version());
    } else if (sscanf(line, "put %d %d", &key, &value) == 2) {
      printf("%d\n", mod_put(key, value));
    } else if (sscanf(line, "get %d", &key) == 1) {
      mod_get(key, out, sizeof out);
      printf("%s\n", out);
    } else {
      printf("?\n");
    }
  }
  return 0;
}
