// Two block-scope statics named laddr, of different types, in one function
// (clang names them note.laddr and note.laddr.1). Unchanged between versions.
#include <stddef.h>
#include <string.h>

void touch(void* object, size_t size);

long note(long k) {
  if (k >= 0) {
    static struct {
      long count;
      long sum;
    } laddr;
    laddr.count++;
    laddr.sum += k;
    touch(&laddr, sizeof laddr);
    return laddr.sum;
  } else {
    static struct {
      char text[20];
      int used;
    } laddr;
    laddr.text[laddr.used++ % 20] = (char)('a' - k);
    touch(&laddr, sizeof laddr);
    return -laddr.used;
  }
}
