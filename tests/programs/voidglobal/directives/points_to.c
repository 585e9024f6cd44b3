// What graft-cc cannot tell: the engine a call through a pointer returned,
// the cfg made from memory malloc returned, the tag a variadic call kept.
GRAFT_GLOBAL_POINTS_TO(spare, eng);
GRAFT_GLOBAL_POINTS_TO(raw, cfg);
GRAFT_GLOBAL_POINTS_TO(logged, tag);
GRAFT_GLOBAL_POINTS_TO(backup, eng);
GRAFT_GLOBAL_POINTS_TO(previous, eng);
