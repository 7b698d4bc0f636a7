-- `query --service $1`: the stored lines of one application's records, in ledger order (records_service index).
SELECT seq, line FROM llm_audit.records WHERE service_name = $1 ORDER BY seq;
