"""The exit codes of every command (sysexits where one fits), and the start-up error that has
no other home."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the database, or a model during `drain`
EXIT_CONFIG = 78  # EX_CONFIG: the configuration is invalid


class ListenError(Exception):
    """``http_listen``'s address cannot be taken (in use, not this host's): exit 69."""
