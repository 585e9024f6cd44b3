// v4: the connection points to a new struct Tube, and struct tube is still
// here for something else: not a rename graft can pair.
#define VERSION 4
#define TUBE Tube
struct tube {
  int id;
  long jobs;
};
struct tube legacy;  // keeps struct tube in the new version
struct Tube {
  int id;
  long ready;
  long jobs;
};
#include "renamed.h"
