// Only for Windows: off it this unit has no code, no data and no DWARF unit.
#ifdef _WIN32
#include <windows.h>
int process_id(void) { return (int)GetCurrentProcessId(); }
#endif
