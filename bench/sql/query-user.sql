-- `query --user $1`: the stored lines of one user's records, in ledger order (records_user index).
SELECT seq, line FROM llm_audit.records WHERE user_id = $1 ORDER BY seq;
