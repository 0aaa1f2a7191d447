-- fragment: sliding-window counting and merging, shared by the detections. Reads the CTE
--   named by `from` (columns source, published and the `key` column), counts with `count` over
--   the rows of the same source and key in [t - $window, t] (ends included) for each row at t,
--   and calls t dense when that count is at least `at_least`. The intervals [t - $window, t] of
--   dense rows that overlap or touch merge into one finding. Defines the CTEs dense, starts,
--   numbered and spans; spans has one row per finding: source, the key, finding (its number
--   within the key), span_start and span_end, both included. The feed joins spans back to its
--   input to collect the rows of each finding. Use:
--   {{ sliding_window from=failures key=login count=count(*) at_least=$threshold }}
dense AS (
    SELECT DISTINCT source, {{key}}, published AS window_end
    FROM (
        SELECT source, {{key}}, published,
               {{count}} OVER (
                   PARTITION BY source, {{key}} ORDER BY published
                   RANGE BETWEEN to_microseconds(CAST(epoch($window) * 1000000 AS BIGINT))
                         PRECEDING AND CURRENT ROW
               ) AS n
        FROM {{from}}
    ) counted
    WHERE n >= {{at_least}}
),
starts AS (
    SELECT source, {{key}}, window_end,
           CASE WHEN window_end - to_microseconds(CAST(epoch($window) * 1000000 AS BIGINT))
                     <= lag(window_end) OVER (PARTITION BY source, {{key}} ORDER BY window_end)
                THEN 0 ELSE 1 END AS fresh
    FROM dense
),
numbered AS (
    SELECT source, {{key}}, window_end,
           sum(fresh) OVER (PARTITION BY source, {{key}} ORDER BY window_end
                            ROWS UNBOUNDED PRECEDING) AS finding
    FROM starts
),
spans AS (
    SELECT source, {{key}}, finding,
           min(window_end) - to_microseconds(CAST(epoch($window) * 1000000 AS BIGINT))
               AS span_start,
           max(window_end) AS span_end
    FROM numbered
    GROUP BY source, {{key}}, finding
)
