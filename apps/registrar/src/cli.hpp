// registrar command line: parses arguments (CLI11) and runs one command.
#pragma once

namespace registrar {

// Runs `registrar ARGS...`; returns the process exit status: 0 when the command completed
// (a registration run completes even if some rows failed), 1 for usage, input and database
// errors, CLI11's own codes for malformed command lines.
int run_cli(int argc, char** argv);

}  // namespace registrar
