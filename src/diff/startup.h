// Start-up state: what the new version sets in code the running process has
// already run and will not run again. A new global (or a new member of a
// grown struct global) set by such code keeps its static value after a live
// update: the patch would apply and the program would break, so graft diff
// finds those writes and refuses unless update-time code gives the value.
//
// Which code runs again is decided over the new build's machine code (Zydis,
// relocations to identities), per function and per instruction:
//  * main runs once and lives in its service loop; a thread's entry started
//    from start-up code lives in its own. Such a "living" function is split at
//    its last service point (a loop with a waiting call, or a call to a
//    function that serves: the highest-ranked such places from which no other
//    is reachable): before it is start-up, in it runs again, after it is
//    shutdown;
//  * constructors (.init_array) and pthread_once routines are start-up;
//  * a function runs as the most repeating of its call sites (any other
//    address taken: runs again, a callback);
//  * in code that runs again, a write behind a once-flag (the function tests a
//    global of the old version and sets it to a constant) or a C++ static
//    guard of the old version does not run again either.
// Writes are stores to the global (rip-relative), through a register holding
// its address, or its address passed to a function that may write through it;
// passed to the function a living function serves in (main's srvserve(&srv)),
// that function's own start-up, before its loop, is searched through its
// parameter. A new member counts wherever it is in the global's struct, in a
// struct member of it too (srv.conns.setpos).
// What this cannot see (an address kept in another global or in the heap,
// code reached only through a function pointer set at start-up) is listed in
// README "Limits".
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "diff/build.h"

namespace graft::diff {

// A global to look for: the whole of it (a new global), or some of its
// members (new members of a grown struct global, [begin, end) bytes of the
// new layout).
struct StartupWatch {
  std::string global;  // identity
  struct Member {
    std::string name;
    uint64_t begin = 0, end = 0;
  };
  std::vector<Member> members;  // empty: the whole global
  bool any_use = false;  // every reference counts, not only writes (changed read-only data start-up code reads)
};

// One write of watched state by code the running process will not run again.
struct StartupWrite {
  std::string global;
  std::string member;    // "" for the whole global
  std::string function;  // the code that writes it (identity)
  uint64_t offset = 0;   // the writing instruction, from the function's entry
  std::string how;       // "called from main before its service loop", "a constructor", ...
  // The global's address goes to a call or into memory there, which may
  // write any of it: a write graft cannot place (a store of the member
  // itself, where there is one, is reported before such a write).
  bool through_address = false;
};

class StartupAnalysis {
 public:
  // `old_globals`: identities of the old version's globals (a once-flag or
  // static guard that already exists is already set in the running process).
  StartupAnalysis(const Build& build, std::set<std::string> old_globals);
  ~StartupAnalysis();

  // Every write of watched state by start-up code, or code behind a once-flag
  // of the old version.
  std::vector<StartupWrite> find(const std::vector<StartupWatch>& watch);

  // How `function` runs, when only at start-up (or once, behind pthread_once
  // or as a constructor): "called from main before its service loop"; ""
  // when it runs again, lives (main, a thread's loop), or never runs.
  std::string startup_only(const std::string& function);

  // How `function` lives, when it never returns while the program serves
  // (main, or a thread's start routine started at start-up, with a service
  // point: "the program's main", "a thread started by main"); "" otherwise.
  std::string lives(const std::string& function);
  // For a living function that is one of several its caller chooses among at
  // its service point (a mode: redis-server run as redis-check-aof), or one
  // such a function calls: the function that chooses; "" otherwise. A
  // process runs one of them, so a thread may never have its frame.
  std::string mode_of(const std::string& function);

  // Where the threads of a living function wait while the program serves:
  // the return addresses (offsets from its entry) of the calls at its service
  // point that wait (a waiting call, a call to a function that serves, an
  // update point). Empty for a function that does not live.
  std::vector<uint64_t> service_returns(const std::string& function);

  // Whether code reached from `roots` (functions run at update time), through
  // any call, names `global`: update-time code that does is taken to set it.
  bool named_from(const std::vector<std::string>& roots, const std::string& global);

 private:
  struct Facts;
  const Facts* facts(const std::string& identity);
  // Whether a thread may wait for long in a call to `callee`: a waiting
  // library call, or a function of the build found to wait (so far, while
  // classify() iterates).
  bool waits_in(const std::string& callee) const;
  size_t living_callees(const Facts& f) const;  // the functions a living one may live on in (its modes)
  void classify();

  const Build& build_;
  std::set<std::string> old_globals_;
  std::map<std::string, std::unique_ptr<Facts>> facts_;
  bool classified_ = false;
};

}  // namespace graft::diff
