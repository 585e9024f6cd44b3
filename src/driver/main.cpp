// graft-cc and graft-c++: one program, the C++ driver when argv[0] names it.
#include "driver/driver.h"

int main(int argc, char** argv) { return graft::driver::run(argc, argv); }
