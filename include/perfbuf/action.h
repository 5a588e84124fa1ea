// What a record handler tells the reader after a record.
#pragma once

namespace perfbuf {

// next: go on; stop: end the current drain, leaving later records in the ring
// for the next call.
enum class Action { next, stop };

}  // namespace perfbuf
