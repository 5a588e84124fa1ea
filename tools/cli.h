// The command line of `perfbuf`, on CLI11: one App with a subcommand per
// command. Each command adds its options with add_command_<name>() and runs
// after parsing; a usage error exits 2 with the reason and the command's help.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "args.h"

namespace perfbuf::tools {

// A subcommand and what runs it once its options are parsed (returns the exit code).
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Help in the tool's own layout: "usage: perfbuf trace [options]", then the
// description, then the options.
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() {
    label("Usage", "usage");
    label("OPTIONS", "options");
    label("SUBCOMMAND", "command");
    column_width(22);
  }
  std::string make_description(const CLI::App*) const override { return {}; }
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string out = CLI::Formatter::make_usage(app, std::move(name)) + app->get_description();
    if (!out.empty() && out.back() != '\n') out += '\n';
    return out;
  }
  // In the list of commands, the first line of each one's description.
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    const std::string& text = sub->get_description();
    CLI::detail::format_help(out, sub->get_display_name(true), text.substr(0, text.find('\n')),
                             get_column_width());
    return out.str();
  }
};

// Settings every command shares: the formatter, and an option given twice
// keeps its last value (as the hand-written parsers did).
inline void configure(CLI::App& app) {
  app.formatter(std::make_shared<HelpFormatter>());
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "this text");
}

// An option whose text `parse` turns into a value (nullopt: invalid, and the
// usage error says `what`); `store` keeps it.
template <class Parse, class Store>
CLI::Option* add_parsed(CLI::App& app, const std::string& name, const std::string& value_name,
                        const std::string& help, const std::string& what, Parse parse,
                        Store store) {
  const std::string flag = name.substr(0, name.find(','));
  return app
      .add_option_function<std::string>(
          name,
          [parse, store, what, flag](const std::string& text) {
            auto value = parse(text);
            if (!value) throw CLI::ValidationError(flag, what);
            store(std::move(*value));
          },
          help)
      ->type_name(value_name);
}

// A number in [min, max], strictly parsed (no NaN, no trailing text).
template <class T>
auto number_in(T min, T max) {
  return [min, max](const std::string& text) { return parse_number<T>(text, min, max); };
}

}  // namespace perfbuf::tools
