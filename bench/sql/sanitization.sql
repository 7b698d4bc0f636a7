-- `report sanitization --from $1 --to $2`: findings per tenant and user; the count is in the stored line only.
SELECT tenant_id, user_id, count(*) AS calls, sum((line::json->'record'->>'sanitization_count')::float8) AS findings
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND line LIKE '%"sanitization_count":_%' AND line NOT LIKE '%"sanitization_count":null%'
 GROUP BY 1, 2;
