"""The command line: the only place that prints, exits and maps errors to exit codes."""
