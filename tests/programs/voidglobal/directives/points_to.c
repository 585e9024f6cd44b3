// What graft-cc cannot tell: the engine a call through a pointer returned.
GRAFT_GLOBAL_POINTS_TO(spare, eng);
