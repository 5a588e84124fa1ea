#pragma once

#include "cli.h"

namespace perfbuf::bench {

// Adds `perfbuf bench [options]` to the tool's command line.
tools::Command add_bench_command(CLI::App& perfbuf);

}  // namespace perfbuf::bench
