// perfbuf: command-line front end. Each subcommand lives in its own file and
// adds its options to one CLI11 App; this file parses and dispatches.
#include <cstdio>
#include <string>
#include <vector>

#include "bench_command.h"
#include "cat_command.h"
#include "cli.h"
#include "trace_command.h"

int main(int argc, char** argv) {
  using namespace perfbuf;
  CLI::App app("'perfbuf <command> --help' describes each command.", "perfbuf");
  tools::configure(app);
  app.require_subcommand(1);
  std::vector<tools::Command> commands = {
      tools::add_trace_command(app),
      bench::add_bench_command(app),
      tools::add_cat_command(app),
  };
  for (const tools::Command& c : commands) c.app->group("commands");
  // `perfbuf help`, as `perfbuf --help`.
  CLI::App* help = app.add_subcommand("help", "this text")->group("");

  const std::string main_help = app.help();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);  // the chosen command's help, if there is one
    return 0;
  } catch (const CLI::ParseError& e) {
    // Name the command whose arguments were wrong, and show its help.
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    const std::string who = chosen.empty() ? "perfbuf" : "perfbuf " + chosen.front()->get_name();
    std::string what = e.what();
    if (chosen.empty())
      what = app.remaining().empty() ? "which command? trace, bench or cat"
                                     : "unknown command '" + app.remaining().front() + "'";
    std::fprintf(stderr, "%s: %s\n\n%s", who.c_str(), what.c_str(), app.help().c_str());
    return 2;
  }
  if (help->parsed()) {
    std::fputs(main_help.c_str(), stdout);
    return 0;
  }
  for (const tools::Command& c : commands)
    if (c.app->parsed()) return c.run();
  return 2;  // unreachable: a command is required
}
