-- `report guardrails --from $1 --to $2`: the decisions are in the stored line only: the lines of the
-- blocked calls and of those that record a decision (the line mentions guardrails), parsed in SQL.
SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, g->>'name' AS rule, g->>'action' AS action, user_id, count(*)
  FROM llm_audit.records r
  LEFT JOIN LATERAL json_array_elements(CASE WHEN json_typeof(r.line::json->'record'->'guardrails') = 'array' THEN r.line::json->'record'->'guardrails' END) g ON true
 WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND (status = 'blocked' OR line LIKE '%"guardrails":[%')
 GROUP BY 1, 2, 3, 4;
