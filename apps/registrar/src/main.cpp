// registrar: bulk course registration on SQLite. See README.md; the work is in registrar_core.
#include "cli.hpp"

int main(int argc, char** argv) { return registrar::run_cli(argc, argv); }
