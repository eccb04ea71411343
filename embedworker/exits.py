"""The exit codes of every command (sysexits where one fits)."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the database, or a model during `drain`
EXIT_CONFIG = 78  # EX_CONFIG: the configuration is invalid
