// What the sink and the source both ask libnats: its last error, the
// streams that capture a subject.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nats_sink.h"

namespace perfbuf::tools {

// The client's last error in this thread, in words (the status's text if
// the client kept none).
inline std::string last_nats_error(natsStatus s) {
  natsStatus ignored;
  const char* text = nats_GetLastError(&ignored);
  return text && *text ? text : natsStatus_GetText(s);
}

// The streams that capture subject (none: an empty list). Throws SinkError
// if the server has no JetStream or the request fails.
inline std::vector<std::string> streams_capturing(jsCtx* js, const std::string& subject,
                                                  std::int64_t wait_ms, const std::string& url) {
  jsOptions filter;
  jsOptions_Init(&filter);
  filter.Wait = wait_ms;
  filter.Stream.Info.SubjectsFilter = subject.c_str();
  jsStreamNamesList* list = nullptr;
  const natsStatus s = js_StreamNames(&list, js, &filter, nullptr);
  std::vector<std::string> names;
  if (list)
    for (int i = 0; i < list->Count; ++i) names.emplace_back(list->List[i]);
  jsStreamNamesList_Destroy(list);
  if (s == NATS_NO_RESPONDERS)
    throw SinkError("the server at " + url +
                    " does not answer JetStream requests: start it with -js (JetStream on)");
  if (s != NATS_OK && s != NATS_NOT_FOUND)
    throw SinkError("listing JetStream streams: " + last_nats_error(s));
  return names;
}

}  // namespace perfbuf::tools
