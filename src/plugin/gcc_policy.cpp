// graft_gcc_policy.so: the balanced policy of graft-cc's plugin (graft_pass.cpp)
// for Debian's gcc 12, which graft-gcc loads (-fplugin) under --graft-policy=
// balanced. Nothing is inlined into main, into a service loop (a function with
// a loop that makes a blocking call: epoll_wait, accept, read, ...) or into
// what calls them (a thread's start routine that calls the loop never returns
// either), so that a change reaches a function that never returns only if
// that function itself changed. gcc has no option for one function, and no
// call-site attribute: the plugin gives those functions their own optimisation
// options (no inlining, as `__attribute__((optimize("no-inline")))` would;
// the early inliner then leaves them alone) and, once the early passes are
// done, marks their calls not inlinable for the IPA inliner (which would
// still inline a function declared `inline` into them). always_inline stays
// inlined. Sealing callees, as graft-cc's plugin does, is not needed: graft-gcc
// passes -flive-patching=inline-clone, under which gcc makes no
// interprocedural assumption but inlining and cloning.
//
// gcc plugins are built against one gcc's headers and check its version:
// this one is for gcc 12 (plugin_default_version_check refuses another).
#include "gcc-plugin.h"
#include "plugin-version.h"

#include "tree.h"
#include "function.h"
#include "basic-block.h"
#include "cgraph.h"
#include "gimple.h"
#include "gimple-iterator.h"
#include "options.h"
#include "tree-pass.h"

#include <set>
#include <vector>

#include "common/blocking_calls.h"

int plugin_is_GPL_compatible;

namespace {

const char* const kName = "graft_gcc_policy";
bool verbose = false;  // -fplugin-arg-graft_gcc_policy-verbose (graft-gcc --graft-verbose): name each function kept so

std::set<cgraph_node*>& runs_for_ever() {
  static std::set<cgraph_node*> nodes;
  return nodes;
}

// Whether a block lies on a cycle of the function's control flow.
bool on_cycle(basic_block start) {
  std::vector<basic_block> work;
  std::set<basic_block> seen;
  edge e;
  edge_iterator ei;
  FOR_EACH_EDGE(e, ei, start->succs) work.push_back(e->dest);
  while (!work.empty()) {
    basic_block bb = work.back();
    work.pop_back();
    if (bb == start) return true;
    if (!seen.insert(bb).second) continue;
    FOR_EACH_EDGE(e, ei, bb->succs) work.push_back(e->dest);
  }
  return false;
}

// main, and a function with a blocking call inside a loop.
bool serves(cgraph_node* node) {
  const char* name = IDENTIFIER_POINTER(DECL_NAME(node->decl));
  if (name && strcmp(name, "main") == 0) return true;
  function* fn = DECL_STRUCT_FUNCTION(node->decl);
  if (!fn || !fn->cfg) return false;
  basic_block bb;
  FOR_EACH_BB_FN(bb, fn) {
    for (gimple_stmt_iterator gsi = gsi_start_bb(bb); !gsi_end_p(gsi); gsi_next(&gsi)) {
      const gcall* call = dyn_cast<gcall*>(gsi_stmt(gsi));
      if (!call) continue;
      tree callee = gimple_call_fndecl(call);
      if (!callee || !DECL_NAME(callee) || !graft::is_blocking_call(IDENTIFIER_POINTER(DECL_NAME(callee)))) continue;
      if (on_cycle(bb)) return true;
    }
  }
  return false;
}

// The function's optimisation options with inlining off.
tree without_inlining(tree decl) {
  cl_optimization saved;
  cl_optimization_save(&saved, &global_options, &global_options_set);
  if (tree own = DECL_FUNCTION_SPECIFIC_OPTIMIZATION(decl))
    cl_optimization_restore(&global_options, &global_options_set, TREE_OPTIMIZATION(own));
  global_options.x_flag_no_inline = 1;
  global_options.x_flag_inline_small_functions = 0;
  global_options.x_flag_inline_functions = 0;
  global_options.x_flag_inline_functions_called_once = 0;
  tree node = build_optimization_node(&global_options, &global_options_set);
  cl_optimization_restore(&global_options, &global_options_set, &saved);
  return node;
}

// Before the small IPA passes (the early inliner among them): every function
// is GIMPLE with its control flow and call graph.
void choose(void*, void*) {
  std::set<cgraph_node*>& forever = runs_for_ever();
  cgraph_node* node;
  FOR_EACH_FUNCTION_WITH_GIMPLE_BODY(node) {
    if (serves(node)) forever.insert(node);
  }
  for (std::vector<cgraph_node*> work(forever.begin(), forever.end()); !work.empty();) {
    cgraph_node* callee = work.back();
    work.pop_back();
    for (cgraph_edge* e = callee->callers; e; e = e->next_caller)
      if (e->caller->has_gimple_body_p() && forever.insert(e->caller).second) work.push_back(e->caller);
  }
  for (cgraph_node* n : forever) {
    if (verbose) fprintf(stderr, "%s: nothing inlined into %s\n", kName, n->name());
    DECL_FUNCTION_SPECIFIC_OPTIMIZATION(n->decl) = without_inlining(n->decl);
  }
}

// After the early GIMPLE passes (the call graph's edges are rebuilt there):
// their calls are not for the IPA inliner either.
void seal(void*, void*) {
  for (cgraph_node* n : runs_for_ever())
    for (cgraph_edge* e = n->callees; e; e = e->next_callee)
      if (e->inline_failed != CIF_OK) e->inline_failed = CIF_FUNCTION_NOT_INLINABLE;
}

}  // namespace

int plugin_init(struct plugin_name_args* info, struct plugin_gcc_version* version) {
  if (!plugin_default_version_check(version, &gcc_version)) {
    fprintf(stderr, "%s: built for gcc %s, loaded into gcc %s\n", kName, gcc_version.basever, version->basever);
    return 1;
  }
  for (int i = 0; i < info->argc; ++i) {
    if (strcmp(info->argv[i].key, "verbose") == 0) {
      verbose = true;
    } else {
      fprintf(stderr, "%s: unknown argument '%s' (the only one is verbose)\n", kName, info->argv[i].key);
      return 1;
    }
  }
  static plugin_info about = {"1", "graft's balanced policy: nothing inlined into main or a service loop"};
  register_callback(info->base_name, PLUGIN_INFO, nullptr, &about);
  register_callback(info->base_name, PLUGIN_ALL_IPA_PASSES_START, choose, nullptr);
  register_callback(info->base_name, PLUGIN_EARLY_GIMPLE_PASSES_END, seal, nullptr);
  return 0;
}
