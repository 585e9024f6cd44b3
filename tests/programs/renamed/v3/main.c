// v3: renamed only; the layout is v1's.
#define VERSION 3
#define TUBE Tube
struct Tube {
  int id;
  long jobs;
};
#include "renamed.h"
