/**
 * The PostgreSQL schema of the ledger, as versioned migrations. Each migration runs once, in its
 * own transaction, under an advisory lock (two `migrate` runs at once are serialised), and is
 * recorded in llm_audit.schema_migrations with the SHA-256 of its SQL: a migration that was edited
 * after it was applied is refused rather than silently diverging. Migrations are only ever added,
 * never changed; docs/server.md describes the schema and the roles.
 */
import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import { LedgerError } from '../errors';

export const SCHEMA = 'llm_audit';
/** Key of the transaction advisory lock every writer (and retention) takes: one sequence of records. */
export const APPEND_LOCK_KEY = '7308604712543700001';
const MIGRATE_LOCK_KEY = '7308604712543700002';

export const ROLES = {
  writer: 'llm_audit_writer',
  auditor: 'llm_audit_auditor',
  retention: 'llm_audit_retention',
  /** Group of the roles `llm-audit grant-reader --tenant T ROLE` sets up: each sees only its tenants' rows. */
  tenantReader: 'llm_audit_tenant_reader',
} as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const createRole = (name: string): string => `
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${name}') THEN
    CREATE ROLE ${name} NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL; -- created concurrently (roles are shared by every database of the cluster)
END $$;`;

const appendOnly = (table: string): string => `
CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${SCHEMA}.${table}
  FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.reject_change();
CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${SCHEMA}.${table}
  FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.reject_change();`;

const V1 = `
DO $$ BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION 'the llm-audit ledger needs a UTF8 database (this one is %)', current_setting('server_encoding');
  END IF;
END $$;

${createRole(ROLES.writer)}
${createRole(ROLES.auditor)}
${createRole(ROLES.retention)}

-- Any change to a ledger table other than INSERT is refused, by every role, the owner included.
CREATE FUNCTION ${SCHEMA}.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.%: % is not allowed: the audit ledger is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE ${SCHEMA}.ledger_meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  ledger_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO ${SCHEMA}.ledger_meta DEFAULT VALUES;
${appendOnly('ledger_meta')}
${appendOnly('schema_migrations')}

-- One row per entry, in seq order: the chain and the dedup key, never partitioned, so seq and
-- (trace_id, span_id) are unique across the whole ledger. Rows stay after retention (hashes and
-- ids only), which keeps duplicates of removed records out too.
CREATE TABLE ${SCHEMA}.chain (
  seq bigint PRIMARY KEY CHECK (seq >= 0),
  trace_id text NOT NULL,
  span_id text NOT NULL,
  prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
  leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
  appended_at timestamptz NOT NULL,
  CONSTRAINT chain_span_unique UNIQUE (trace_id, span_id)
);
${appendOnly('chain')}

-- The chain is continuous by construction: seq 0 starts from zeros, every other seq from the leaf
-- of the seq before it (the primary key rules out a second row with the same seq).
CREATE FUNCTION ${SCHEMA}.chain_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  previous bytea;
BEGIN
  IF NEW.seq = 0 THEN
    previous := '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  ELSE
    SELECT leaf_hash INTO previous FROM ${SCHEMA}.chain WHERE seq = NEW.seq - 1;
    IF previous IS NULL THEN
      RAISE EXCEPTION 'llm_audit.chain: seq % does not follow the last entry (seq % missing)', NEW.seq, NEW.seq - 1
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
  END IF;
  IF NEW.prev_hash <> previous THEN
    RAISE EXCEPTION 'llm_audit.chain: seq % does not chain to seq %', NEW.seq, NEW.seq - 1
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER chain_continuity BEFORE INSERT ON ${SCHEMA}.chain FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.chain_check();

-- The records: the stored line (canonical JSON {"prev","record","seq"}, the Merkle leaf data,
-- exactly as in a file-ledger segment) plus columns derived from it for indexes. Partitioned by
-- the UTC day the entry was appended (the file ledger's segments), so retention drops whole days.
CREATE TABLE ${SCHEMA}.records (
  seq bigint NOT NULL,
  appended_at timestamptz NOT NULL,
  line text NOT NULL,
  prev_hash bytea NOT NULL,
  leaf_hash bytea NOT NULL,
  ts timestamptz NOT NULL,
  trace_id text NOT NULL,
  span_id text NOT NULL,
  request_id text,
  user_id text,
  session_id text,
  tenant_id text,
  provider text,
  operation text,
  model_request text,
  model_response text,
  status text,
  input_tokens double precision,
  output_tokens double precision,
  cost_usd double precision,
  latency_ms double precision,
  error_type text,
  has_content boolean NOT NULL,
  has_errors boolean NOT NULL,
  PRIMARY KEY (seq, appended_at)
) PARTITION BY RANGE (appended_at);
CREATE INDEX records_ts ON ${SCHEMA}.records (ts);
CREATE INDEX records_user ON ${SCHEMA}.records (user_id, ts);
CREATE INDEX records_status ON ${SCHEMA}.records (status, ts);
CREATE INDEX records_cost ON ${SCHEMA}.records (cost_usd);
CREATE INDEX records_request ON ${SCHEMA}.records (request_id);
CREATE INDEX records_appended ON ${SCHEMA}.records (appended_at, seq);
${appendOnly('records')}

-- What the database can check of a new entry without parsing JSON (a line may hold escapes jsonb
-- refuses, such as \\u0000): its leaf hash is SHA-256(0x00 || line), its prev and seq are those in
-- the line, and it matches the chain row of the same seq. The verifier checks everything else.
CREATE FUNCTION ${SCHEMA}.records_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.leaf_hash <> sha256('\\x00'::bytea || convert_to(NEW.line, 'UTF8')) THEN
    RAISE EXCEPTION 'llm_audit.records: seq %: leaf_hash is not SHA-256(0x00 || line)', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF substr(NEW.line, 1, 9) <> '{"prev":"' OR decode(substr(NEW.line, 10, 64), 'hex') <> NEW.prev_hash
     OR right(NEW.line, length('"seq":' || NEW.seq || '}')) <> '"seq":' || NEW.seq || '}' THEN
    RAISE EXCEPTION 'llm_audit.records: seq %: prev or seq do not match the line', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ${SCHEMA}.chain c WHERE c.seq = NEW.seq AND c.leaf_hash = NEW.leaf_hash
                 AND c.prev_hash = NEW.prev_hash AND c.appended_at = NEW.appended_at) THEN
    RAISE EXCEPTION 'llm_audit.records: seq % has no matching chain entry', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER records_consistent BEFORE INSERT ON ${SCHEMA}.records FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.records_check();

-- Checkpoints and retention tombstones, one canonical JSON line each, in the order written.
CREATE TABLE ${SCHEMA}.checkpoints (
  id bigserial PRIMARY KEY,
  line text NOT NULL,
  type text NOT NULL CHECK (type IN ('checkpoint', 'tombstone')),
  tree_size bigint NOT NULL CHECK (tree_size >= 0),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX checkpoints_size ON ${SCHEMA}.checkpoints (tree_size);
${appendOnly('checkpoints')}

-- Every retention run: who, when, what was dropped.
CREATE TABLE ${SCHEMA}.retention_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  by_role text NOT NULL DEFAULT session_user,
  partitions text[] NOT NULL,
  records bigint NOT NULL,
  tree_size bigint NOT NULL,
  checkpoint_id bigint NOT NULL REFERENCES ${SCHEMA}.checkpoints (id)
);
${appendOnly('retention_log')}

-- Partitions are created by the writer through this function (it cannot run DDL itself).
CREATE FUNCTION ${SCHEMA}.ensure_partition(day date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := 'records_' || to_char(day, 'YYYYMMDD');
BEGIN
  IF to_regclass('${SCHEMA}.' || name) IS NULL THEN
    EXECUTE format('CREATE TABLE ${SCHEMA}.%I PARTITION OF ${SCHEMA}.records FOR VALUES FROM (%L) TO (%L)',
      name, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
    -- Row triggers are inherited from the parent; a TRUNCATE of the partition itself is not.
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON ${SCHEMA}.%I FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.reject_change()',
      name || '_no_truncate', name);
    EXECUTE format('REVOKE ALL ON ${SCHEMA}.%I FROM PUBLIC', name);
  END IF;
  RETURN name;
END $$;

-- Retention: the only way records leave the ledger. Drops a prefix of whole day partitions whose
-- every record has expired under the policy written in the tombstone, and records the tombstone
-- (computed and signed by \`llm-audit retention apply\`) and a retention_log row in the same
-- transaction. The checks here do not trust the caller's plan.
CREATE FUNCTION ${SCHEMA}.apply_retention(p_tombstone text, p_partitions text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
  t jsonb := p_tombstone::jsonb;
  present text[];
  k int := coalesce(array_length(p_partitions, 1), 0);
  n bigint;
  applied timestamptz;
  md interval; ct interval; er interval;
  last_leaf bytea;
  removed bigint;
  bad bigint;
  first_kept bigint;
  cid bigint;
  part text;
BEGIN
  PERFORM pg_advisory_xact_lock(${APPEND_LOCK_KEY});
  IF t->>'type' IS DISTINCT FROM 'tombstone' THEN
    RAISE EXCEPTION 'apply_retention: not a tombstone' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF t->>'ledger_id' IS DISTINCT FROM (SELECT ledger_id::text FROM ${SCHEMA}.ledger_meta) THEN
    RAISE EXCEPTION 'apply_retention: the tombstone is for another ledger' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT array_agg(c.relname::text ORDER BY c.relname) INTO present
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = '${SCHEMA}.records'::regclass;
  IF k = 0 OR k >= coalesce(array_length(present, 1), 0) OR present[1:k] <> p_partitions THEN
    RAISE EXCEPTION 'apply_retention: only the oldest partitions can be dropped, never the newest (present: %, asked: %)', present, p_partitions
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  applied := (t->'tombstone'->>'applied_at')::timestamptz;
  IF applied IS NULL OR applied > clock_timestamp() + interval '5 minutes' THEN
    RAISE EXCEPTION 'apply_retention: applied_at % is missing or in the future', applied USING ERRCODE = 'invalid_parameter_value';
  END IF;
  md := ${SCHEMA}.duration(t->'tombstone'->'policy'->>'metadata');
  ct := ${SCHEMA}.duration(t->'tombstone'->'policy'->>'content');
  er := ${SCHEMA}.duration(t->'tombstone'->'policy'->>'errors');
  IF md < interval '1 day' OR ct < interval '1 day' OR er < interval '1 day' THEN
    RAISE EXCEPTION 'apply_retention: every lifetime must be at least one day' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  n := (t->>'tree_size')::bigint;
  -- The dropped partitions hold exactly seq [first, n): the prefix the tombstone summarises.
  SELECT count(*), count(*) FILTER (WHERE greatest(ts + md, CASE WHEN has_content THEN ts + ct END, CASE WHEN has_errors THEN ts + er END) > applied)
    INTO removed, bad
    FROM ${SCHEMA}.records r JOIN pg_class c ON c.oid = r.tableoid
    WHERE c.relname = ANY (p_partitions);
  IF bad > 0 THEN
    RAISE EXCEPTION 'apply_retention: % record(s) in those partitions have not expired at %', bad, applied
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT leaf_hash INTO last_leaf FROM ${SCHEMA}.chain WHERE seq = n - 1;
  IF last_leaf IS NULL OR encode(last_leaf, 'hex') <> t->>'last_leaf' THEN
    RAISE EXCEPTION 'apply_retention: the tombstone does not end at the chain entry seq %', n - 1 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT min(r.seq) INTO first_kept FROM ${SCHEMA}.records r JOIN pg_class c ON c.oid = r.tableoid
    WHERE NOT (c.relname = ANY (p_partitions));
  IF EXISTS (SELECT 1 FROM ${SCHEMA}.records r JOIN pg_class c ON c.oid = r.tableoid
             WHERE c.relname = ANY (p_partitions) AND r.seq >= n)
     OR (first_kept IS NOT NULL AND first_kept <> n) THEN
    RAISE EXCEPTION 'apply_retention: the partitions do not hold exactly the records before seq %', n USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO ${SCHEMA}.checkpoints (line, type, tree_size) VALUES (p_tombstone, 'tombstone', n) RETURNING id INTO cid;
  INSERT INTO ${SCHEMA}.retention_log (partitions, records, tree_size, checkpoint_id) VALUES (p_partitions, removed, n, cid);
  FOREACH part IN ARRAY p_partitions LOOP
    EXECUTE format('DROP TABLE ${SCHEMA}.%I', part);
  END LOOP;
  RETURN cid;
END $$;

-- '2y', '6m', '12w', '90d' (the CLI's durations) as an interval.
CREATE FUNCTION ${SCHEMA}.duration(d text) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE right(d, 1)
    WHEN 'y' THEN make_interval(years => left(d, -1)::int)
    WHEN 'm' THEN make_interval(months => left(d, -1)::int)
    WHEN 'w' THEN make_interval(weeks => left(d, -1)::int)
    WHEN 'd' THEN make_interval(days => left(d, -1)::int)
  END
$$;

-- Privileges. Nothing for PUBLIC; UPDATE, DELETE and TRUNCATE for nobody (the triggers refuse them
-- even to the owner); the writer inserts, the auditor reads, retention goes through its function.
REVOKE ALL ON ALL TABLES IN SCHEMA ${SCHEMA} FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${SCHEMA} FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${SCHEMA} FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ${SCHEMA} FROM CURRENT_USER;
GRANT USAGE ON SCHEMA ${SCHEMA} TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention};
GRANT SELECT ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention};
GRANT INSERT ON ${SCHEMA}.chain, ${SCHEMA}.records, ${SCHEMA}.checkpoints TO ${ROLES.writer};
GRANT USAGE ON SEQUENCE ${SCHEMA}.checkpoints_id_seq TO ${ROLES.writer};
GRANT EXECUTE ON FUNCTION ${SCHEMA}.ensure_partition(date) TO ${ROLES.writer};
GRANT EXECUTE ON FUNCTION ${SCHEMA}.apply_retention(text, text[]) TO ${ROLES.retention};
GRANT EXECUTE ON FUNCTION ${SCHEMA}.duration(text) TO ${ROLES.retention};
`;

// Issue 14: the writer role could insert a tombstone row (or a checkpoint line carrying tombstone
// details), and verify, query and reports then skipped the partitions it listed. Only the retention
// path may record one: apply_retention() runs as the schema owner (SECURITY DEFINER), so a row
// naming removed records is refused unless the current role is that owner. The type and tree_size
// columns must also be those of the line, which is what verify reads.
const V2 = `
CREATE FUNCTION ${SCHEMA}.checkpoints_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  body jsonb := NEW.line::jsonb;
BEGIN
  IF body->>'type' IS DISTINCT FROM NEW.type OR (body->>'tree_size')::bigint IS DISTINCT FROM NEW.tree_size THEN
    RAISE EXCEPTION 'llm_audit.checkpoints: the type and tree_size columns must be those of the line'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (NEW.type = 'tombstone' OR body ? 'tombstone')
     AND current_user IS DISTINCT FROM (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '${SCHEMA}') THEN
    RAISE EXCEPTION 'llm_audit.checkpoints: only llm_audit.apply_retention() may record a retention tombstone (role %)', current_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER checkpoints_only_retention_tombstones BEFORE INSERT ON ${SCHEMA}.checkpoints
  FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.checkpoints_check();
REVOKE ALL ON FUNCTION ${SCHEMA}.checkpoints_check() FROM PUBLIC;
`;

// Issue 14: the writer role could insert correctly chained rows (the triggers allow that) and the
// next checkpoint signed them with the rest. A signing writer signs a checkpoint in every append
// transaction, so a row no signing writer wrote is one whose transaction recorded no signed
// checkpoint ending at it. The database stamps every chain and checkpoint row with the id of the
// transaction that inserted it, which the writer role cannot choose (the trigger overwrites it);
// only the schema owner keeps a given value, so a dump restored by the owner keeps its stamps.
// Rows from before this migration have none and are not checked.
const V3 = `
ALTER TABLE ${SCHEMA}.chain ADD COLUMN txid bigint;
ALTER TABLE ${SCHEMA}.checkpoints ADD COLUMN txid bigint;
CREATE INDEX chain_txid ON ${SCHEMA}.chain (txid);
CREATE INDEX checkpoints_txid ON ${SCHEMA}.checkpoints (txid, tree_size);
CREATE FUNCTION ${SCHEMA}.stamp_txid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.txid IS NULL
     OR current_user IS DISTINCT FROM (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '${SCHEMA}') THEN
    NEW.txid := txid_current();
  END IF;
  RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION ${SCHEMA}.stamp_txid() FROM PUBLIC;
CREATE TRIGGER chain_txid BEFORE INSERT ON ${SCHEMA}.chain FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.stamp_txid();
CREATE TRIGGER checkpoints_txid BEFORE INSERT ON ${SCHEMA}.checkpoints FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.stamp_txid();
`;

// Issue 14, item 5: record version 2 keeps the HTTP status of a failed call in a field of its own;
// indexed like error_type. Rows of v1 records have none (null), which is what their line says.
const V4 = `
ALTER TABLE ${SCHEMA}.records ADD COLUMN http_status double precision;
CREATE INDEX records_http_status ON ${SCHEMA}.records (http_status, ts) WHERE http_status IS NOT NULL;
`;

// Issue 17: each checkpoint also as a C2SP signed note (note.ts), in the same row, and the copies
// witnesses cosigned, appended as they arrive (after the checkpoint's transaction, never in it).
const V5 = `
ALTER TABLE ${SCHEMA}.checkpoints ADD COLUMN note text;
CREATE TABLE ${SCHEMA}.cosigned_notes (
  id bigserial PRIMARY KEY,
  tree_size bigint NOT NULL,
  witness text NOT NULL,
  note text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
${appendOnly('cosigned_notes')}
REVOKE ALL ON ${SCHEMA}.cosigned_notes FROM PUBLIC;
GRANT SELECT ON ${SCHEMA}.cosigned_notes TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention};
GRANT INSERT ON ${SCHEMA}.cosigned_notes TO ${ROLES.writer};
GRANT USAGE ON SEQUENCE ${SCHEMA}.cosigned_notes_id_seq TO ${ROLES.writer};
`;

// Issue 23: per-tenant readers, enforced by the database. Row-level security on records and chain:
// the writer, auditor and retention roles keep seeing every row (and the writer inserting); a member
// of llm_audit_tenant_reader sees the records of the tenants llm_audit.tenant_readers lists for a
// role it has (\`llm-audit grant-reader\` fills it), and the chain rows of those records only, so
// neither the records of another tenant nor their number can be read. It is not granted the
// checkpoints, notes or retention log, whose tree sizes count every tenant's records together.
// The schema owner (and superusers) bypass row-level security; partitions are reached only through
// the parent table (ensure_partition grants nothing on them), where the policies apply.
const V6 = `
${createRole(ROLES.tenantReader)}
CREATE TABLE ${SCHEMA}.tenant_readers (
  role_name name NOT NULL,
  tenant_id text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  granted_by text NOT NULL DEFAULT session_user,
  PRIMARY KEY (role_name, tenant_id)
);
REVOKE ALL ON ${SCHEMA}.tenant_readers FROM PUBLIC;
ALTER TABLE ${SCHEMA}.tenant_readers ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON ${SCHEMA}.tenant_readers FOR SELECT TO ${ROLES.tenantReader}
  USING (EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = role_name AND pg_has_role(r.oid, 'USAGE')));
CREATE POLICY every_grant ON ${SCHEMA}.tenant_readers FOR SELECT TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention} USING (true);
GRANT SELECT ON ${SCHEMA}.tenant_readers TO ${ROLES.tenantReader}, ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention};

CREATE FUNCTION ${SCHEMA}.reader_tenants() RETURNS SETOF text LANGUAGE sql STABLE AS $$
  SELECT t.tenant_id FROM ${SCHEMA}.tenant_readers t
   WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = t.role_name AND pg_has_role(r.oid, 'USAGE'))
$$;
REVOKE ALL ON FUNCTION ${SCHEMA}.reader_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${SCHEMA}.reader_tenants() TO ${ROLES.tenantReader}, ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention};

ALTER TABLE ${SCHEMA}.records ENABLE ROW LEVEL SECURITY;
CREATE POLICY ledger_roles ON ${SCHEMA}.records FOR ALL TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention} USING (true) WITH CHECK (true);
CREATE POLICY tenant_reader ON ${SCHEMA}.records FOR SELECT TO ${ROLES.tenantReader}
  USING (tenant_id IN (SELECT ${SCHEMA}.reader_tenants()));
ALTER TABLE ${SCHEMA}.chain ENABLE ROW LEVEL SECURITY;
CREATE POLICY ledger_roles ON ${SCHEMA}.chain FOR ALL TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention} USING (true) WITH CHECK (true);
CREATE POLICY tenant_reader ON ${SCHEMA}.chain FOR SELECT TO ${ROLES.tenantReader}
  USING (EXISTS (SELECT 1 FROM ${SCHEMA}.records r WHERE r.seq = chain.seq));

GRANT USAGE ON SCHEMA ${SCHEMA} TO ${ROLES.tenantReader};
GRANT SELECT ON ${SCHEMA}.schema_migrations, ${SCHEMA}.ledger_meta, ${SCHEMA}.records, ${SCHEMA}.chain TO ${ROLES.tenantReader};
`;

// Issue 23: record version 3 names the application and environment (the span's resource); indexed
// for `--service` / `--env`. Rows of v1 and v2 records have none (null), which is what their line says.
const V7 = `
ALTER TABLE ${SCHEMA}.records ADD COLUMN service_name text, ADD COLUMN service_namespace text, ADD COLUMN service_version text,
  ADD COLUMN service_instance_id text, ADD COLUMN deployment_environment text;
CREATE INDEX records_service ON ${SCHEMA}.records (service_name, deployment_environment, ts);
`;

/**
 * The actions of operation records (record.ts OPERATION_ACTIONS) as migration 8 knows them. A
 * migration never changes, so an action added later needs a migration of its own that replaces
 * llm_audit.record_kind (test/postgres/kind-postgres.test.ts compares this list with the set).
 */
export const MIGRATION_8_OPERATION_ACTIONS = ['content.shred', 'ledger.recovered', 'ledger.gap', 'audit.read', 'retention.policy'] as const;

// Issue 22: reports left out operation and event records with a LIKE on every line, which cost as
// much again as the report itself, and guardrail and sanitization reports parsed every line. Now
// the records say what they are in columns (fields.ts): `kind` (call, operation, event; only the
// few non-calls indexed), `action`, and how many sanitization findings and guardrail decisions a
// record holds, and whether it references its input by a hash. The database recomputes `kind` from the line on every insert and refuses a row
// whose column says otherwise (a writer cannot hide a call from the reports by calling it an
// operation); verify's row check compares every column with the line, as for the others.
// llm_audit.record_kind reads only the line's head and one substring search: a stored line is
// canonical JSON (verify checks it), so it starts `{"prev":"<64 hex>","record":{"action":` (the
// record's first member), and an unescaped `"event":{` can only be the event member (every other
// object member of a record holds scalars or has fixed names; a quote in a string is escaped).
// Existing rows are filled in here, the append-only trigger set aside for this transaction only.
const V8 = `
CREATE FUNCTION ${SCHEMA}.record_kind(line text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN substr(line, 74, 21) = '","record":{"action":'
     AND substr(line, 95, 24) ~ '^"(${MIGRATION_8_OPERATION_ACTIONS.map((a) => a.replace('.', '\\.')).join('|')})"[,}]' THEN 'operation'
    WHEN strpos(line, '"event":{') > 0 THEN 'event'
    ELSE 'call'
  END
$$;
REVOKE ALL ON FUNCTION ${SCHEMA}.record_kind(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${SCHEMA}.record_kind(text) TO ${ROLES.writer}, ${ROLES.auditor}, ${ROLES.retention}, ${ROLES.tenantReader};

ALTER TABLE ${SCHEMA}.records ADD COLUMN action text, ADD COLUMN kind text,
  ADD COLUMN sanitization_count double precision, ADD COLUMN guardrail_count double precision, ADD COLUMN sanitization_kinds double precision, ADD COLUMN has_input_hash boolean;

ALTER TABLE ${SCHEMA}.records DISABLE TRIGGER records_append_only;
UPDATE ${SCHEMA}.records r SET (kind, action, has_input_hash, sanitization_count, guardrail_count, sanitization_kinds) = (
  SELECT ${SCHEMA}.record_kind(r.line), j->>'action', json_typeof(j->'input_hash') = 'string' AND j->>'input_hash' <> '',
         CASE WHEN json_typeof(j->'sanitization_count') = 'number' THEN (j->>'sanitization_count')::float8 END,
         CASE WHEN json_typeof(j->'guardrails') = 'array' THEN json_array_length(j->'guardrails') END,
         CASE WHEN json_typeof(j->'sanitization'->'kinds') = 'object'
              THEN nullif((SELECT count(*) FROM json_each(j->'sanitization'->'kinds') k WHERE json_typeof(k.value) = 'number'), 0) END
    -- PostgreSQL's JSON operators refuse a line holding an escaped NUL or lone surrogate (text
    -- cannot hold them): those escapes become U+FFFD first, as in the writer's copy (rows.ts pgText).
    FROM (SELECT (CASE WHEN strpos(r.line, '\\u') = 0 THEN r.line
                       ELSE regexp_replace(r.line, '(?<!\\\\)((?:\\\\\\\\)*)\\\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})', '\\1\\\\ufffd', 'g')
                  END)::json->'record' AS j) x);
ALTER TABLE ${SCHEMA}.records ENABLE TRIGGER records_append_only;
ALTER TABLE ${SCHEMA}.records ALTER COLUMN kind SET NOT NULL;
CREATE INDEX records_kind ON ${SCHEMA}.records (kind, ts) WHERE kind <> 'call';

-- records_check of migration 1, and the kind.
CREATE OR REPLACE FUNCTION ${SCHEMA}.records_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.leaf_hash <> sha256('\\x00'::bytea || convert_to(NEW.line, 'UTF8')) THEN
    RAISE EXCEPTION 'llm_audit.records: seq %: leaf_hash is not SHA-256(0x00 || line)', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF substr(NEW.line, 1, 9) <> '{"prev":"' OR decode(substr(NEW.line, 10, 64), 'hex') <> NEW.prev_hash
     OR right(NEW.line, length('"seq":' || NEW.seq || '}')) <> '"seq":' || NEW.seq || '}' THEN
    RAISE EXCEPTION 'llm_audit.records: seq %: prev or seq do not match the line', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.kind IS DISTINCT FROM ${SCHEMA}.record_kind(NEW.line) THEN
    RAISE EXCEPTION 'llm_audit.records: seq %: kind % is not what the line holds (%)', NEW.seq, NEW.kind, ${SCHEMA}.record_kind(NEW.line)
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ${SCHEMA}.chain c WHERE c.seq = NEW.seq AND c.leaf_hash = NEW.leaf_hash
                 AND c.prev_hash = NEW.prev_hash AND c.appended_at = NEW.appended_at) THEN
    RAISE EXCEPTION 'llm_audit.records: seq % has no matching chain entry', NEW.seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
`;

// Issue 22: ingest into PostgreSQL spent about a third of each records INSERT, and half of each
// chain INSERT, in the row triggers of migrations 1 and 8: one PL/pgSQL call per row, with an
// index look-up for the chain's predecessor. The same checks now run once per statement, set-based,
// over the statement's new rows (a transition table), AFTER the insert: a violation still aborts
// the statement and its transaction, with the same messages. The guarantee is the same: after every
// INSERT, each new chain row follows the row seq - 1 (stored, or inserted by the same statement)
// and each new records row hashes to its leaf, carries its prev and seq, its kind, and matches its
// chain row. Statement triggers fire for the table the INSERT names: the writer role can insert
// only through llm_audit.records (it has no privilege on the partitions); the schema owner, who
// could insert into a partition directly, can disable triggers anyway, which verify's checks of
// the lines and columns are there for. No row is rewritten. The index on cost_usd alone goes: no
// query filters or sorts on it (reports.ts and bench/sql only sum it per group), and each of the
// records indexes costs about a ninth of the insert's own time (EXPLAIN ANALYZE, 1536 rows:
// 242 ms with the nine secondary indexes, 128 ms without).
const V9 = `
DROP INDEX ${SCHEMA}.records_cost;

DROP TRIGGER chain_continuity ON ${SCHEMA}.chain;
DROP FUNCTION ${SCHEMA}.chain_check();
CREATE FUNCTION ${SCHEMA}.chain_check_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  -- In seq order, a row's predecessor is the row before it in the statement when that one is
  -- seq - 1; otherwise the stored row seq - 1 is looked up (once per statement, in the usual case).
  SELECT n.seq, e.previous INTO bad
    FROM (SELECT seq, prev_hash, lag(seq) OVER w AS lseq, lag(leaf_hash) OVER w AS lleaf
            FROM new_chain WINDOW w AS (ORDER BY seq)) n
    CROSS JOIN LATERAL (
      SELECT CASE WHEN n.seq = 0 THEN '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
                  WHEN n.lseq = n.seq - 1 THEN n.lleaf
                  ELSE (SELECT c.leaf_hash FROM ${SCHEMA}.chain c WHERE c.seq = n.seq - 1) END AS previous) e
   WHERE e.previous IS NULL OR n.prev_hash <> e.previous
   ORDER BY n.seq LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF bad.previous IS NULL THEN
    RAISE EXCEPTION 'llm_audit.chain: seq % does not follow the last entry (seq % missing)', bad.seq, bad.seq - 1
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RAISE EXCEPTION 'llm_audit.chain: seq % does not chain to seq %', bad.seq, bad.seq - 1
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
REVOKE ALL ON FUNCTION ${SCHEMA}.chain_check_rows() FROM PUBLIC;
CREATE TRIGGER chain_continuity AFTER INSERT ON ${SCHEMA}.chain REFERENCING NEW TABLE AS new_chain
  FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.chain_check_rows();

DROP TRIGGER records_consistent ON ${SCHEMA}.records;
DROP FUNCTION ${SCHEMA}.records_check();
CREATE FUNCTION ${SCHEMA}.records_check_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  -- The first offending row (in seq order) and the first check it fails, in migration 8's order.
  SELECT x.seq, x.kind, x.line_kind,
         CASE WHEN NOT x.hash_ok THEN 1 WHEN NOT x.ends_ok THEN 2 WHEN x.kind IS DISTINCT FROM x.line_kind THEN 3 ELSE 4 END AS why
    INTO bad
    FROM (SELECT n.seq, n.kind, ${SCHEMA}.record_kind(n.line) AS line_kind,
                 n.leaf_hash = sha256('\\x00'::bytea || convert_to(n.line, 'UTF8')) AS hash_ok,
                 substr(n.line, 1, 9) = '{"prev":"' AND decode(substr(n.line, 10, 64), 'hex') = n.prev_hash
                   AND right(n.line, length('"seq":' || n.seq || '}')) = '"seq":' || n.seq || '}' AS ends_ok,
                 EXISTS (SELECT 1 FROM ${SCHEMA}.chain c WHERE c.seq = n.seq AND c.leaf_hash = n.leaf_hash
                         AND c.prev_hash = n.prev_hash AND c.appended_at = n.appended_at) AS chained
            FROM new_records n) x
   WHERE NOT (x.hash_ok AND x.ends_ok AND x.kind IS NOT DISTINCT FROM x.line_kind AND x.chained)
   ORDER BY x.seq LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  CASE bad.why
    WHEN 1 THEN
      RAISE EXCEPTION 'llm_audit.records: seq %: leaf_hash is not SHA-256(0x00 || line)', bad.seq
        USING ERRCODE = 'integrity_constraint_violation';
    WHEN 2 THEN
      RAISE EXCEPTION 'llm_audit.records: seq %: prev or seq do not match the line', bad.seq
        USING ERRCODE = 'integrity_constraint_violation';
    WHEN 3 THEN
      RAISE EXCEPTION 'llm_audit.records: seq %: kind % is not what the line holds (%)', bad.seq, bad.kind, bad.line_kind
        USING ERRCODE = 'integrity_constraint_violation';
    ELSE
      RAISE EXCEPTION 'llm_audit.records: seq % has no matching chain entry', bad.seq
        USING ERRCODE = 'integrity_constraint_violation';
  END CASE;
END $$;
REVOKE ALL ON FUNCTION ${SCHEMA}.records_check_rows() FROM PUBLIC;
CREATE TRIGGER records_consistent AFTER INSERT ON ${SCHEMA}.records REFERENCING NEW TABLE AS new_records
  FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.records_check_rows();
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'ledger tables, append-only triggers, roles, retention', sql: V1 },
  { version: 2, name: 'only the retention function records tombstones', sql: V2 },
  { version: 3, name: 'rows stamped with their transaction', sql: V3 },
  { version: 4, name: 'records.http_status (record version 2)', sql: V4 },
  { version: 5, name: 'checkpoints as C2SP signed notes, witness cosignatures', sql: V5 },
  { version: 6, name: 'tenant readers: row-level security on records and chain', sql: V6 },
  { version: 7, name: 'records.service_* and deployment_environment (record version 3)', sql: V7 },
  { version: 8, name: 'records.kind, action, sanitization and guardrail counts (reports without reading lines)', sql: V8 },
  { version: 9, name: 'chain and records checks once per statement (ingest speed)', sql: V9 },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
/** The schema version that brought tenant readers (row-level security, llm_audit.tenant_readers). */
export const TENANT_READERS_VERSION = 6;

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

const BOOTSTRAP = `
CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
CREATE TABLE IF NOT EXISTS ${SCHEMA}.schema_migrations (
  version int PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  applied_by text NOT NULL DEFAULT session_user
);`;

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

/** Versions recorded in the database; [] when the schema does not exist. */
export async function appliedMigrations(client: ClientBase): Promise<AppliedMigration[]> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('${SCHEMA}.schema_migrations')::text AS t`);
  if (exists.rows[0]?.t === null || exists.rows[0]?.t === undefined) return [];
  const result = await client.query<AppliedMigration>(`SELECT version, name, checksum FROM ${SCHEMA}.schema_migrations ORDER BY version`);
  return result.rows;
}

/** Throws unless the recorded migrations are a prefix of MIGRATIONS with the same checksums. */
export function checkApplied(applied: readonly AppliedMigration[]): void {
  for (const row of applied) {
    const known = MIGRATIONS.find((m) => m.version === row.version);
    if (!known) {
      throw new LedgerError(
        'LEDGER_SCHEMA_MISMATCH',
        `the database has schema version ${row.version}, newer than this llm-audit knows (${LATEST_VERSION}): upgrade llm-audit`,
      );
    }
    if (checksum(known.sql) !== row.checksum) {
      throw new LedgerError(
        'LEDGER_SCHEMA_MISMATCH',
        `schema migration ${row.version} (${row.name}) in the database differs from this llm-audit's: the schema was changed by hand or by another version`,
      );
    }
  }
}

/**
 * Applies the missing migrations (as the connected role, who becomes the owner of the schema).
 * Returns the versions applied now.
 */
export async function migrate(client: ClientBase): Promise<number[]> {
  const done: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK_KEY})`);
    await client.query(BOOTSTRAP);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  for (const migration of MIGRATIONS) {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK_KEY})`);
      const applied = await appliedMigrations(client);
      checkApplied(applied);
      if (applied.some((a) => a.version === migration.version)) {
        await client.query('COMMIT');
        continue;
      }
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${SCHEMA}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        checksum(migration.sql),
      ]);
      await client.query('COMMIT');
      done.push(migration.version);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
  return done;
}
