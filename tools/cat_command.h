#pragma once

#include "cli.h"

namespace perfbuf::tools {

// Adds `perfbuf cat`: reads any program's perf event array or BPF ring
// buffer and prints its records, decoded with BTF.
Command add_cat_command(CLI::App& perfbuf);

}  // namespace perfbuf::tools
