-- `report cost-by-user --env $3 --from $1 --to $2`: cost-by-user of one deployment environment.
SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, user_id, count(*) AS requests,
       sum(cost_usd) AS total_cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL AND status = 'success') AS unpriced_requests,
       avg(latency_ms) AS avg_latency_ms
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND deployment_environment = $3
 GROUP BY 1, 2 ORDER BY 1, 2;
