// What graft diff asks for homonyms: load_item returns a job unless asked
// for a plain buffer, which load_job never asks for.
#include <graft/graft.h>
GRAFT_RETYPES(load_item, job);
