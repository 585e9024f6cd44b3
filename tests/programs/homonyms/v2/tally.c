#include "tally.h"
