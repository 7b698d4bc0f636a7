-- `report anomalies --now $1`: calls of the last 24 h whose input tokens exceed mean + 3 population
-- standard deviations of the 7 days before.
WITH base AS (
  SELECT count(input_tokens) AS n, avg(input_tokens) AS mean, stddev_pop(input_tokens) AS sd
    FROM llm_audit.records
   WHERE ts >= $1::timestamptz - interval '8 days' AND ts < $1::timestamptz - interval '1 day')
SELECT r.ts, r.request_id, r.user_id, coalesce(r.model_request, r.model_response) AS model, r.input_tokens, base.n, base.mean, base.sd
  FROM llm_audit.records r, base
 WHERE r.ts >= $1::timestamptz - interval '1 day' AND r.ts < $1::timestamptz AND r.input_tokens > base.mean + 3 * base.sd
 ORDER BY r.seq;
