// v2: renamed, and it grows.
#define VERSION 2
#define TUBE Tube
struct Tube {
  int id;
  long ready;
  long jobs;
};
#include "renamed.h"
