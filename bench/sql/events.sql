-- `report events --from $1 --to $2`: application audit events; only the stored line says a record is one.
SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, line::json->'record'->'event'->>'type' AS type,
       line::json->'record'->'event'->>'outcome' AS outcome, user_id, count(*) AS events
  FROM llm_audit.records
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND line LIKE '%"event":{%'
 GROUP BY 1, 2, 3, 4;
