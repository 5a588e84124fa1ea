#pragma once

namespace perfbuf::bench {

// `perfbuf bench [options]`: argv[0] is "bench". Returns the exit code.
int bench_main(int argc, char** argv);

}  // namespace perfbuf::bench
