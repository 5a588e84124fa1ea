#pragma once

namespace perfbuf::tools {

// `perfbuf trace [options]`: argv[0] is "trace". Returns the exit code.
int trace_main(int argc, char** argv);

}  // namespace perfbuf::tools
