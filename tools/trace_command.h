#pragma once

#include "cli.h"

namespace perfbuf::tools {

// Adds `perfbuf trace [options]` to the tool's command line.
Command add_trace_command(CLI::App& perfbuf);

}  // namespace perfbuf::tools
