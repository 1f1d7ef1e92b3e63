"""How every command line of tfpriors fails: one line on stderr and exit status 2.

    $ python -m trainers.train --components 0
    error: Expected `components` to be a positive int. Received: components=0

Bad input is the user's to fix, so it gets one line that says what was expected and what was
received, and exit status 2 (argparse's convention), with no usage block and no traceback.
`--debug`, a flag of every command, shows the full traceback instead.

What counts as bad input:
- argparse's own errors (unknown flags, values of the wrong type, choices out of range), reported
  by `ArgumentParser.error`;
- the exceptions the library raises for invalid input, `USER_ERRORS`: ValueError (bad values,
  malformed JSON, a corrupt model file: `trainers.run_io.ModelFileError`), FileNotFoundError,
  NotADirectoryError, IsADirectoryError and PermissionError, reported by `run`.
Anything else is a bug or a failure of the run (e.g. a loss that turns NaN) and surfaces as usual,
with its traceback and exit status 1.
"""

import argparse
import sys

__all__ = ["ArgumentParser", "USER_ERRORS", "run", "one_line"]

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def one_line(message):
    """`message` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(message).split())


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line, with a `--debug` flag and defaults in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help="on an error, show the full traceback instead of one line")

    def error(self, message):
        """Prints `error: <message> (see --help)` on stderr and exits with status 2."""
        self.exit(2, f"error: {one_line(message)} (see --help)\n")


def run(main, argv=None):
    """Calls `main(argv)` and turns a `USER_ERRORS` exception into one stderr line and status 2.

    Args:
      main: the command's `main(argv) -> int`.
      argv: the arguments (default: sys.argv[1:]); `--debug` among them re-raises instead.

    Returns:
      the exit status: main's if it returns an int (0 if it returns anything else), 2 for bad input.
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        status = main(argv)
        return status if isinstance(status, int) else 0
    except USER_ERRORS as err:
        if "--debug" in arguments:
            raise
        sys.stderr.write(f"error: {one_line(err)} (--debug shows the traceback)\n")
        return 2
