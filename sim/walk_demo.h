// `shadowsim demo`: builds a small address space in each paging mode with the page-table editor
// and prints a handful of walks (references, A/D updates, translation or #PF error code). It is
// the quickest way to see the paging core work, and a worked example of its API.
#pragma once

#include <ostream>

namespace shadowsim {

int run_walk_demo(std::ostream& out);

}  // namespace shadowsim
