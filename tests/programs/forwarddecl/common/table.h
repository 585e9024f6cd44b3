// Test target: a struct the first unit only declares (struct entry; as
// redis's server.h declares struct RedisModuleCommand, and nginx's headers
// every struct they typedef), defined in a later unit. clang says
// "declaration" in DWARF with a form graft did not read (flag_present): the
// declaration was taken for an empty definition, and v2's growing entry
// was no change at all (the patch carried no data plan, and the new code
// read the old layout). vN/table.c defines the entry.
struct entry;
struct table {
  int n;
  struct entry* first;
};
struct entry* make_entry(long key, long value);
long value_of(const struct entry* e);
