// What graft-cc cannot tell: the engine a call through a pointer returned,
// and the cfg made from memory malloc returned.
GRAFT_GLOBAL_POINTS_TO(spare, eng);
GRAFT_GLOBAL_POINTS_TO(raw, cfg);
