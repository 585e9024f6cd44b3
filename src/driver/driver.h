// graft-cc / graft-c++: the drop-in compiler driver around the pinned clang.
#pragma once

namespace graft::driver {

// The whole driver; returns the exit status (or does not return: it exec()s
// clang whenever nothing has to be recorded).
int run(int argc, char** argv);

}  // namespace graft::driver
