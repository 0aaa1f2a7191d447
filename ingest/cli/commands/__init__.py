"""One function per ``oktaduck`` command, grouped by what the commands do: ``collect``,
``query``, ``mappings`` and ``demo`` (with ``common`` for what several share).

Each command imports the modules it works with inside its function, not at the top: a one-shot
poll then loads neither the daemon, the simulator, JWT and cryptography, nor Arrow
(tests/test_cli.py holds it to that), and ``--help`` answers at once.
"""
