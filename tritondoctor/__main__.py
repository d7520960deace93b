"""`python -m tritondoctor`.

The signal policy goes in before anything else is imported, so that a Ctrl-C or SIGTERM at any
moment of start-up ends the way it does later (the "interrupted" line, exit 130 / 143), never as a
traceback; a KeyboardInterrupt that Python raises before it is in place is said the same way.
"""

import sys

try:
    import signal

    def _interrupted(signum: int, _frame: object) -> None:
        try:
            from tritondoctor.errors import Interrupted
        except ImportError:  # the signal came while tritondoctor.errors itself was being imported
            raise KeyboardInterrupt(signum) from None
        raise Interrupted(signum)

    # SIGTERM first: until then its default action ends the process without a word, whereas a
    # SIGINT meanwhile is Python's own KeyboardInterrupt, which the except below reports.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)

    # cli imports only the standard library's os, signal and sys, and tritondoctor.errors
    from tritondoctor import cli

    cli.main()  # installs cli's own handler for the same policy, then runs the command
except KeyboardInterrupt as interrupt:
    from tritondoctor import cli

    cli.ignore_further_signals()  # one "interrupted" is enough; a second Ctrl-C must not cut it short
    sys.exit(cli.interrupted_status(interrupt, sys.argv[1:]))
