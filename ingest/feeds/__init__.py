"""Named feeds: ``.sql`` files shipped with the package, each a header and one SELECT over the
stored events, read and bound by ``feedfile`` and run read-only by ``run``."""
