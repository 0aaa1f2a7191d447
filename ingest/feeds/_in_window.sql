-- fragment: the rows of the feed's window, with the standard parameters applied: published
--   in [since, until) and, when source is given, only that source. Every feed's WHERE clause
--   on events starts with it: {{ in_window }}
published >= $since AND published < $until
  AND ($source IS NULL OR source = $source)
