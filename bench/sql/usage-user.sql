-- `report usage --by user --from $1 --to $2`: the calls' totals per user (operation and event records
-- left out: before migration 8 only the stored line tells them apart).
SELECT user_id, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
       count(*) FILTER (WHERE status = 'blocked') AS blocked, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL AND status = 'success') AS unpriced
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz
 GROUP BY 1 ORDER BY 7 DESC NULLS LAST, 2 DESC;
