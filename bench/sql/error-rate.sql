-- `report error-rate --now $1`: per requested model, calls of the last 24 h.
SELECT coalesce(model_request, model_response) AS model, array_agg(DISTINCT model_response) AS response_models,
       count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors,
       count(*) FILTER (WHERE status = 'blocked') AS blocked
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz - interval '1 day' AND ts < $1::timestamptz
 GROUP BY 1 ORDER BY 1;
