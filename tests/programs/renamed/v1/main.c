#define VERSION 1
#define TUBE tube
struct tube {
  int id;
  long jobs;
};
#include "renamed.h"
