-- `report summary --from $1 --to $2`: the calls' totals per provider and requested model.
SELECT provider, coalesce(model_request, model_response) AS model, count(*) AS calls,
       count(*) FILTER (WHERE status = 'error') AS errors, count(*) FILTER (WHERE status = 'blocked') AS blocked,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL AND status = 'success') AS unpriced
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz
 GROUP BY 1, 2 ORDER BY 8 DESC NULLS LAST;
