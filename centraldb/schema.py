"""The PostgreSQL/PostGIS schema of the centre's record and its numbered migrations.

``MIGRATIONS`` maps a number to SQL text; a released migration is never edited, a change is a
new number. ``migrate(conn)`` applies the missing ones in order, each in its own transaction
under an advisory lock (two processes starting at once migrate once), and records each in
``schema_migrations``. A database whose ``schema_migrations`` names a number this program does
not know is refused (a newer program wrote it).

What is where:

* **fixes** are partitioned by measurement time (declarative ``RANGE`` on ``t``, epoch seconds
  as ``double precision`` exactly as the engine and the SQLite store keep them, one partition a
  calendar month UTC, named ``fixes_pYYYYMM``). Every partition has a GiST index on
  ``(geom, t)`` (``geom`` is ``geometry(Point, 27700)``, British National Grid, generated from
  the ``x``/``y`` metres the writer projects with pyproj, as localdb does; ``t`` in the same
  GiST through ``btree_gist``, so "near this place in this window" is one index range: measured
  1.8 ms against 102 ms for a GiST on ``geom`` alone, which reads the place's whole month, for
  13 % less ingest speed), a ``(device, t)`` btree that includes the columns a tag's track
  needs (migration 9: what crime mapping and playback read, index-only) and a BRIN index on ``fix_id`` (ids grow with arrival, so
  "everything after the checkpoint" is found in the last few block ranges of each partition).
  ``ensure_fix_partition(t)`` creates the month of ``t`` and the month after it (a table of its
  own, attached: readers never hold it up, migration 11); the writer calls it at the first fix
  of every month, so each month is made a month before it is needed. Retention drops whole partitions:
  ``drop_fix_partitions(cutoff, who, at)`` detaches and drops every partition entirely before
  the cutoff, and audits it. Closed months are compacted by the administrator
  (``centraldb.compaction``, ``monitorapp compact-store``): each one's track index rebuilt
  concurrently, recorded in ``fix_partition_compactions`` and audited (migration 10).
* **the logs** (``ack_log``, ``audit_log``) are hash-chained by the server itself
  (``chain_hash_ack``/``chain_hash_audit`` reproduce ``localdb.hashchain.record_hash`` byte for
  byte, so ``localdb.hashchain.verify_chain`` checks either backend), appended only through
  ``ack_append``/``audit_append``, which serialise on the chain's row in ``chain_heads``.
  Triggers refuse UPDATE, DELETE and TRUNCATE.
* **handling** (acknowledge, close, shelve, unshelve) is only done by the PL/pgSQL functions
  ``ack_alert``, ``close_alert``, ``shelve_alert`` and ``unshelve_alert``, which enforce spec §4
  and §8 where the data is: the first acknowledgement wins (a second is refused with who and
  when), close only once acknowledged and cleared, no shelving of ``strap_tamper`` or
  ``exclusion_entered``, shelving at most 8 hours, a note for critical and high alerts.
  Refusals are raised with SQLSTATE ``MA001`` (``MA002`` for "already acknowledged", with
  who/when in the DETAIL as JSON).
* **meta** holds the store's mode (``live``/``training``), set once.

* **identity and roles** (migration 4, ``centraldb.roles``): per-person logins, group roles,
  everything owned by ``monitorapp_owner``; the handling functions take who from
  ``session_user``. Every later migration ends with ``apply_privileges()`` (``migrate`` runs it),
  which gives what it made to the owner and re-applies the grants.

* **response protocols and the alert's timeline** (migration 8, issue 21): ``response_protocols``
  (one row a version, recorded through ``record_protocols``); ``record_step`` and
  ``close_alert_skipping`` enforce ``localdb.handling``'s timeline rules with the same messages
  (a step only on an acknowledged, open alert, by its owner or a supervisor; closing needs each
  mandatory step of ``protocol_steps_of(alert)`` completed or a reason), and ``close_alert``
  goes through the same check.

* **the decider's inputs** (migration 6): ``pg_notify('monitorapp_handling', alert_id)`` on
  every ``ack_log`` insert and ``pg_notify('monitorapp_zone', zone_id)`` on every zone version,
  which the decider LISTENs for (with a poll as a backstop); ``feed_journal``, the messages the
  decider received since its last checkpoint, which a standby replays when it takes over.
"""
from __future__ import annotations

from localdb.schema import StoreError
from centraldb.roles import RESERVED_ACTIONS, ROLES_MIGRATION, audit_append_sql
from centraldb.outbox import OUTBOX_MIGRATION_PG

ERR_REFUSED = "MA001"
ERR_ALREADY_ACKED = "MA002"

MIGRATIONS: dict[int, str] = {
    # ---- 1: tables and indexes ----------------------------------------------------------------
    1: r"""
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE FUNCTION meta_mode_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.key = 'mode' THEN RAISE EXCEPTION 'the store mode is set once'; END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER meta_mode_fixed BEFORE UPDATE OR DELETE ON meta
  FOR EACH ROW EXECUTE FUNCTION meta_mode_fixed();

CREATE TABLE offenders (
  offender_id text PRIMARY KEY, name text, risk text, borough text,
  fix_interval_s double precision, updated_at double precision NOT NULL);
CREATE TABLE tags (device text PRIMARY KEY, first_seen double precision,
                   last_seen double precision);
CREATE TABLE assignments (
  assignment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  offender_id text NOT NULL, device text NOT NULL,
  valid_from double precision NOT NULL, valid_to double precision);
CREATE INDEX assignments_device ON assignments (device, valid_from);
CREATE INDEX assignments_offender ON assignments (offender_id, valid_from);
CREATE TABLE zones (
  zone_id text NOT NULL, version integer NOT NULL, name text, feature text NOT NULL,
  created_at double precision NOT NULL, created_by text, removed boolean NOT NULL DEFAULT false,
  PRIMARY KEY (zone_id, version));
CREATE TABLE requirements (
  offender_id text NOT NULL, requirement_id text NOT NULL, version integer NOT NULL,
  body text NOT NULL, recorded_at double precision NOT NULL,
  PRIMARY KEY (offender_id, requirement_id, version));

CREATE SEQUENCE fixes_fix_id_seq AS bigint;
CREATE TABLE fixes (
  fix_id bigint NOT NULL DEFAULT nextval('fixes_fix_id_seq'),
  device text NOT NULL, seq bigint, t double precision NOT NULL, rx double precision,
  lat double precision NOT NULL, lon double precision NOT NULL, acc double precision NOT NULL,
  src text, spd double precision, hdg double precision, sats integer, batt double precision,
  x double precision NOT NULL, y double precision NOT NULL, used boolean NOT NULL,
  geom geometry(Point, 27700) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(x, y), 27700)) STORED
) PARTITION BY RANGE (t);
ALTER SEQUENCE fixes_fix_id_seq OWNED BY fixes.fix_id;
CREATE INDEX fixes_geom_t ON fixes USING gist (geom, t);
CREATE INDEX fixes_device_t ON fixes (device, t);
CREATE INDEX fixes_fix_id ON fixes USING brin (fix_id);

CREATE TABLE events (
  event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, device text NOT NULL, seq bigint,
  t double precision NOT NULL, rx double precision, type text NOT NULL, detail text);
CREATE INDEX events_device_t ON events (device, t);
CREATE TABLE rejected (
  rejected_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, rx double precision,
  topic text, device text, reason text NOT NULL, text text NOT NULL, raw bytea NOT NULL);

CREATE TABLE alerts (
  alert_id text PRIMARY KEY, type text NOT NULL, priority text NOT NULL, offender_id text,
  device text, requirement_id text, zone_id text, zone_version integer,
  start double precision NOT NULL, raised_at double precision NOT NULL, late boolean NOT NULL,
  evidence text, state text NOT NULL, cleared_at double precision,
  reactivations integer NOT NULL DEFAULT 0, updated_at double precision NOT NULL);
CREATE INDEX alerts_raised ON alerts (raised_at);
CREATE TABLE alert_changes (
  change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, alert_id text NOT NULL,
  change text NOT NULL, n integer NOT NULL, at double precision NOT NULL, state text NOT NULL,
  UNIQUE (alert_id, change, n));
CREATE TABLE alert_handling (
  alert_id text PRIMARY KEY REFERENCES alerts (alert_id), handling text NOT NULL,
  operator text, at double precision NOT NULL, action_code text,
  acknowledged boolean NOT NULL DEFAULT false, acked_by text, acked_at double precision,
  shelved_reason text, shelved_until double precision,
  CHECK (handling IN ('unacknowledged', 'acknowledged', 'shelved', 'closed')));

CREATE TABLE accounts (
  username text PRIMARY KEY, role text NOT NULL, pw_hash text NOT NULL,
  created_at double precision NOT NULL, created_by text NOT NULL,
  failures integer NOT NULL DEFAULT 0, locked boolean NOT NULL DEFAULT false,
  locked_at double precision, disabled boolean NOT NULL DEFAULT false,
  last_sign_in double precision, password_changed_at double precision NOT NULL);

CREATE TABLE ack_log (
  seq bigint PRIMARY KEY, alert_id text NOT NULL, at double precision NOT NULL,
  operator text NOT NULL, action text NOT NULL, action_code text, note text, reason text,
  until double precision, prev_hash text NOT NULL, hash text NOT NULL);
CREATE INDEX ack_log_alert ON ack_log (alert_id, seq);
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY, at double precision NOT NULL, who text NOT NULL,
  action text NOT NULL, detail text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL);
-- the newest record of each chain: appends serialise on its row (see ack_append)
CREATE TABLE chain_heads (chain text PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL);
INSERT INTO chain_heads VALUES ('ack_log', 0, repeat('0', 64)), ('audit_log', 0, repeat('0', 64));

CREATE FUNCTION log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ack_log_append_only BEFORE UPDATE OR DELETE ON ack_log
  FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER ack_log_no_truncate BEFORE TRUNCATE ON ack_log
  FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();

CREATE TABLE checkpoints (
  feed text PRIMARY KEY, at double precision NOT NULL, position text NOT NULL,
  snapshot text NOT NULL, max_fix_id bigint NOT NULL, max_event_id bigint NOT NULL,
  max_rejected_id bigint NOT NULL);
""",

    # ---- 2: the hash chains, computed by the server -------------------------------------------
    # Python's json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False):
    # to_json(text) escapes exactly as Python does with ensure_ascii=False; a float is
    # Python's repr (the shortest round-trip digits, which PostgreSQL's float8out gives with
    # extra_float_digits >= 1, plus ".0" for an integral value) inside the range where the two
    # agree on fixed notation (1e-4 <= |x| < 1e15; times and durations always are).
    2: r"""
CREATE FUNCTION py_json_text(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(to_json(s)::text, 'null')
$$;
CREATE FUNCTION py_json_float(x double precision) RETURNS text LANGUAGE plpgsql IMMUTABLE
SET extra_float_digits = 1 AS $$
DECLARE s text;
BEGIN
  IF x IS NULL THEN RETURN 'null'; END IF;
  IF x <> x OR x IN ('Infinity'::float8, '-Infinity'::float8) THEN
    RAISE EXCEPTION 'a logged number must be finite, not %', x USING ERRCODE = 'MA001';
  END IF;
  IF x <> 0 AND (abs(x) >= 1e15 OR abs(x) < 1e-4) THEN
    RAISE EXCEPTION 'logged number % is outside the range the chain hashes exactly', x
      USING ERRCODE = 'MA001';
  END IF;
  s := x::text;
  IF position('.' in s) = 0 THEN s := s || '.0'; END IF;
  RETURN s;
END $$;
CREATE FUNCTION chain_digest(prev text, body text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(prev || E'\n' || body, 'UTF8')), 'hex')
$$;
CREATE FUNCTION chain_hash_ack(prev text, p_seq bigint, p_alert_id text, p_at double precision,
    p_operator text, p_action text, p_action_code text, p_note text, p_reason text,
    p_until double precision) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT chain_digest(prev, '{"action":' || py_json_text(p_action)
    || ',"action_code":' || py_json_text(p_action_code)
    || ',"alert_id":' || py_json_text(p_alert_id)
    || ',"at":' || py_json_float(p_at)
    || ',"note":' || py_json_text(p_note)
    || ',"operator":' || py_json_text(p_operator)
    || ',"reason":' || py_json_text(p_reason)
    || ',"seq":' || p_seq::text
    || ',"until":' || py_json_float(p_until) || '}')
$$;
CREATE FUNCTION chain_hash_audit(prev text, p_seq bigint, p_at double precision, p_who text,
    p_action text, p_detail text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT chain_digest(prev, '{"action":' || py_json_text(p_action)
    || ',"at":' || py_json_float(p_at)
    || ',"detail":' || py_json_text(p_detail)
    || ',"seq":' || p_seq::text
    || ',"who":' || py_json_text(p_who) || '}')
$$;

CREATE FUNCTION ack_append(p_alert_id text, p_at double precision, p_operator text,
    p_action text, p_action_code text, p_note text, p_reason text, p_until double precision)
    RETURNS ack_log LANGUAGE plpgsql AS $$
DECLARE head chain_heads; r ack_log;
BEGIN
  SELECT * INTO head FROM chain_heads WHERE chain = 'ack_log' FOR UPDATE;
  r := ROW(head.seq + 1, p_alert_id, p_at, p_operator, p_action, p_action_code, p_note,
           p_reason, p_until, head.hash,
           chain_hash_ack(head.hash, head.seq + 1, p_alert_id, p_at, p_operator, p_action,
                          p_action_code, p_note, p_reason, p_until));
  INSERT INTO ack_log SELECT r.*;
  UPDATE chain_heads SET seq = r.seq, hash = r.hash WHERE chain = 'ack_log';
  RETURN r;
END $$;
CREATE FUNCTION audit_append(p_who text, p_action text, p_detail text,
    p_at double precision DEFAULT NULL) RETURNS audit_log LANGUAGE plpgsql AS $$
DECLARE head chain_heads; r audit_log; v_at double precision;
BEGIN
  IF p_who IS NULL OR btrim(p_who) = '' THEN
    RAISE EXCEPTION 'an audit record needs who did it' USING ERRCODE = 'MA001';
  END IF;
  v_at := coalesce(p_at, extract(epoch FROM clock_timestamp()));
  SELECT * INTO head FROM chain_heads WHERE chain = 'audit_log' FOR UPDATE;
  r := ROW(head.seq + 1, v_at, btrim(p_who), p_action, p_detail, head.hash,
           chain_hash_audit(head.hash, head.seq + 1, v_at, btrim(p_who), p_action, p_detail));
  INSERT INTO audit_log SELECT r.*;
  UPDATE chain_heads SET seq = r.seq, hash = r.hash WHERE chain = 'audit_log';
  RETURN r;
END $$;

-- ---- handling (spec §4, §8), enforced here ----------------------------------------------------
CREATE FUNCTION handling_refuse(msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', msg USING ERRCODE = 'MA001';
END $$;

-- the handling an operator sees at p_at: an expired shelving has ended by itself
CREATE FUNCTION effective_handling(h alert_handling, p_at double precision) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN h.alert_id IS NULL THEN 'unacknowledged'
    WHEN h.handling = 'shelved' AND h.shelved_until IS NOT NULL AND h.shelved_until <= p_at
      THEN CASE WHEN h.acknowledged THEN 'acknowledged' ELSE 'unacknowledged' END
    ELSE h.handling END
$$;

CREATE FUNCTION handling_begin(p_alert_id text, p_operator text) RETURNS alerts
LANGUAGE plpgsql AS $$
DECLARE a alerts;
BEGIN
  IF p_operator IS NULL OR btrim(p_operator) = '' THEN
    PERFORM handling_refuse('operator is required');
  END IF;
  -- every step on one alert serialises on its row: the first acknowledgement wins
  SELECT * INTO a FROM alerts WHERE alert_id = p_alert_id FOR UPDATE;
  IF NOT FOUND THEN PERFORM handling_refuse('no such alert: ' || coalesce(p_alert_id, '(none)')); END IF;
  RETURN a;
END $$;

CREATE FUNCTION handling_set(p_alert_id text, p_handling text, p_operator text,
    p_at double precision, p_action_code text, p_acknowledged boolean, p_reason text,
    p_until double precision) RETURNS void LANGUAGE sql AS $$
  INSERT INTO alert_handling (alert_id, handling, operator, at, action_code, acknowledged,
                              acked_by, acked_at, shelved_reason, shelved_until)
  VALUES (p_alert_id, p_handling, p_operator, p_at, p_action_code, p_acknowledged,
          CASE WHEN p_handling = 'acknowledged' AND p_action_code IS NOT NULL THEN p_operator END,
          CASE WHEN p_handling = 'acknowledged' AND p_action_code IS NOT NULL THEN p_at END,
          p_reason, p_until)
  ON CONFLICT (alert_id) DO UPDATE SET handling = excluded.handling,
    operator = excluded.operator, at = excluded.at,
    action_code = coalesce(excluded.action_code, alert_handling.action_code),
    acknowledged = alert_handling.acknowledged OR excluded.acknowledged,
    acked_by = coalesce(alert_handling.acked_by, excluded.acked_by),
    acked_at = coalesce(alert_handling.acked_at, excluded.acked_at),
    shelved_reason = excluded.shelved_reason, shelved_until = excluded.shelved_until
$$;

CREATE FUNCTION ack_alert(p_alert_id text, p_operator text, p_action_code text, p_note text,
    p_at double precision DEFAULT NULL) RETURNS ack_log LANGUAGE plpgsql AS $$
DECLARE a alerts; h alert_handling; v_at double precision; state text;
BEGIN
  v_at := coalesce(p_at, extract(epoch FROM clock_timestamp()));
  IF p_action_code IS NULL OR p_action_code NOT IN ('contacted_subject', 'contacted_probation',
      'police_informed', 'false_alarm_gps', 'device_fault', 'other') THEN
    PERFORM handling_refuse(format('unknown action code %L; one of contacted_subject, '
      'contacted_probation, police_informed, false_alarm_gps, device_fault, other',
      coalesce(p_action_code, '')));
  END IF;
  IF p_action_code = 'other' AND coalesce(btrim(p_note), '') = '' THEN
    PERFORM handling_refuse('action code ''other'' needs a note saying what was done');
  END IF;
  a := handling_begin(p_alert_id, p_operator);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF a.priority IN ('critical', 'high') AND coalesce(btrim(p_note), '') = '' THEN
    PERFORM handling_refuse(format('a %s alert needs a note saying what was done', a.priority));
  END IF;
  state := effective_handling(h, v_at);
  IF state = 'closed' THEN PERFORM handling_refuse(format('alert %s is closed', p_alert_id)); END IF;
  IF h.acknowledged THEN
    RAISE EXCEPTION 'alert % was already acknowledged by % at %', p_alert_id,
      coalesce(h.acked_by, h.operator),
      to_char(to_timestamp(coalesce(h.acked_at, h.at)) AT TIME ZONE 'UTC',
              'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      USING ERRCODE = 'MA002',
            DETAIL = json_build_object('by', coalesce(h.acked_by, h.operator),
                                       'at', coalesce(h.acked_at, h.at))::text;
  END IF;
  PERFORM handling_set(p_alert_id, 'acknowledged', btrim(p_operator), v_at, p_action_code,
                       true, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, btrim(p_operator), 'acknowledge', p_action_code, p_note,
                    NULL, NULL);
END $$;

CREATE FUNCTION close_alert(p_alert_id text, p_operator text, p_note text,
    p_at double precision DEFAULT NULL) RETURNS ack_log LANGUAGE plpgsql AS $$
DECLARE a alerts; h alert_handling; v_at double precision; state text;
BEGIN
  v_at := coalesce(p_at, extract(epoch FROM clock_timestamp()));
  a := handling_begin(p_alert_id, p_operator);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  state := effective_handling(h, v_at);
  IF state = 'closed' THEN
    PERFORM handling_refuse(format('alert %s is already closed', p_alert_id));
  END IF;
  IF state <> 'acknowledged' THEN
    PERFORM handling_refuse(format('alert %s must be acknowledged before it is closed', p_alert_id));
  END IF;
  IF a.state <> 'cleared' THEN
    PERFORM handling_refuse(format('alert %s is still active: it can be closed once it has cleared',
                                   p_alert_id));
  END IF;
  PERFORM handling_set(p_alert_id, 'closed', btrim(p_operator), v_at, NULL, true, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, btrim(p_operator), 'close', NULL, p_note, NULL, NULL);
END $$;

CREATE FUNCTION shelve_alert(p_alert_id text, p_operator text, p_reason text,
    p_until double precision, p_at double precision DEFAULT NULL) RETURNS ack_log
LANGUAGE plpgsql AS $$
DECLARE a alerts; h alert_handling; v_at double precision; state text;
BEGIN
  v_at := coalesce(p_at, extract(epoch FROM clock_timestamp()));
  IF coalesce(btrim(p_reason), '') = '' THEN
    PERFORM handling_refuse('a reason for shelving is required');
  END IF;
  IF p_until IS NULL OR p_until <> p_until OR p_until IN ('Infinity'::float8, '-Infinity'::float8)
      OR p_until <= v_at THEN
    PERFORM handling_refuse('a shelving needs an expiry time in the future');
  END IF;
  IF p_until - v_at > 8 * 3600 THEN
    PERFORM handling_refuse('an alert can be shelved for at most 8 hours');
  END IF;
  a := handling_begin(p_alert_id, p_operator);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF a.type IN ('strap_tamper', 'exclusion_entered') THEN
    PERFORM handling_refuse(format('a %s alert cannot be shelved', a.type));
  END IF;
  state := effective_handling(h, v_at);
  IF state = 'closed' THEN PERFORM handling_refuse(format('alert %s is closed', p_alert_id)); END IF;
  PERFORM handling_set(p_alert_id, 'shelved', btrim(p_operator), v_at, NULL,
                       coalesce(h.acknowledged, false), btrim(p_reason), p_until);
  RETURN ack_append(p_alert_id, v_at, btrim(p_operator), 'shelve', NULL, NULL, btrim(p_reason),
                    p_until);
END $$;

CREATE FUNCTION unshelve_alert(p_alert_id text, p_operator text,
    p_at double precision DEFAULT NULL) RETURNS ack_log LANGUAGE plpgsql AS $$
DECLARE a alerts; h alert_handling; v_at double precision;
BEGIN
  v_at := coalesce(p_at, extract(epoch FROM clock_timestamp()));
  a := handling_begin(p_alert_id, p_operator);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF effective_handling(h, v_at) <> 'shelved' THEN
    PERFORM handling_refuse(format('alert %s is not shelved', p_alert_id));
  END IF;
  PERFORM handling_set(p_alert_id, CASE WHEN h.acknowledged THEN 'acknowledged'
                                        ELSE 'unacknowledged' END,
                       btrim(p_operator), v_at, NULL, h.acknowledged, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, btrim(p_operator), 'unshelve', NULL, NULL, NULL, NULL);
END $$;
""",

    # ---- 3: monthly partitions of fixes and retention by partition ----------------------------
    3: r"""
CREATE FUNCTION fix_partition_name(month timestamp) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'fixes_p' || to_char(month, 'YYYYMM')
$$;

-- the partition of the month (UTC) holding t, and the month after it; returns how many it made
CREATE FUNCTION ensure_fix_partition(p_t double precision) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE m timestamp; made integer := 0; k integer; lo double precision; hi double precision;
BEGIN
  IF p_t IS NULL OR p_t <> p_t OR p_t IN ('Infinity'::float8, '-Infinity'::float8) THEN
    RAISE EXCEPTION 'a fix time must be finite' USING ERRCODE = 'MA001';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('monitorapp.fix_partitions'));
  FOR k IN 0..1 LOOP
    m := date_trunc('month', to_timestamp(p_t) AT TIME ZONE 'UTC') + make_interval(months => k);
    IF to_regclass(fix_partition_name(m)) IS NULL THEN
      lo := extract(epoch FROM m AT TIME ZONE 'UTC');
      hi := extract(epoch FROM (m + interval '1 month') AT TIME ZONE 'UTC');
      EXECUTE format('CREATE TABLE %I PARTITION OF fixes FOR VALUES FROM (%s) TO (%s)',
                     fix_partition_name(m), lo, hi);
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END $$;

-- the partitions of fixes with their bounds, oldest first
CREATE VIEW fix_partitions AS
  SELECT c.relname::text AS name,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                       'FROM \(''?([^'')]+)''?\) TO \(''?([^'')]+)''?\)'))[1]::float8 AS t_from,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                       'FROM \(''?([^'')]+)''?\) TO \(''?([^'')]+)''?\)'))[2]::float8 AS t_to
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'fixes'::regclass
  ORDER BY 2;

-- retention: detach and drop every partition wholly before p_cutoff; audited with what went
CREATE FUNCTION drop_fix_partitions(p_cutoff double precision, p_who text,
    p_at double precision DEFAULT NULL, p_retention_days double precision DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE p record; n bigint; total bigint := 0; dropped text[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('monitorapp.fix_partitions'));
  FOR p IN SELECT * FROM fix_partitions WHERE t_to <= p_cutoff ORDER BY t_from LOOP
    EXECUTE format('SELECT count(*) FROM %I', p.name) INTO n;
    EXECUTE format('ALTER TABLE fixes DETACH PARTITION %I', p.name);
    EXECUTE format('DROP TABLE %I', p.name);
    total := total + n;
    dropped := dropped || p.name;
  END LOOP;
  PERFORM audit_append(p_who, 'purge_fixes',
    json_build_object('cutoff', p_cutoff, 'deleted', total, 'partitions', dropped,
                      'retention_days', p_retention_days)::text, p_at);
  RETURN total;
END $$;
""",

    # ---- 4: identity and roles enforced by the server (centraldb/roles.py) --------------------
    4: ROLES_MIGRATION,

    # ---- 5: crime mapping reads each tag's window as arrays (centraldb/crime.py) -------------
    # One row per tag with its fixes in the window and two neighbours either side (the
    # bracketing fix and the one that decides whether it is a single-fix jump) as arrays: a
    # few hundred rows cross the wire instead of tens of thousands, and the client builds its
    # arrays without a Python loop per fix.
    5: r"""
CREATE FUNCTION crime_tracks_of(p_lo double precision, p_hi double precision, p_devices text[])
RETURNS TABLE (device text, fix_id bigint[], seq bigint[], t double precision[],
               lat double precision[], lon double precision[], acc double precision[],
               x double precision[], y double precision[], used boolean[])
LANGUAGE sql STABLE AS $$
  -- Per tag (a LATERAL): its window by the (device, t) index, with two fixes either side.
  -- Read for all tags at once ("device = ANY(...) AND t BETWEEN ..."), the planner took the
  -- GiST on (geom, t) for the time range and walked the whole month's GiST: measured 1.2 s
  -- a query at 100 M fixes, against milliseconds here. In no particular order: the client
  -- sorts (an ORDER BY in each array_agg sorts nine times).
  SELECT dd.device, w.fix_id, w.seq, w.t, w.lat, w.lon, w.acc, w.x, w.y, w.used
  FROM unnest(p_devices) AS dd(device)
  CROSS JOIN LATERAL (
    SELECT array_agg(s.fix_id) AS fix_id, array_agg(s.seq) AS seq, array_agg(s.t) AS t,
           array_agg(s.lat) AS lat, array_agg(s.lon) AS lon, array_agg(s.acc) AS acc,
           array_agg(s.x) AS x, array_agg(s.y) AS y, array_agg(s.used) AS used
    FROM ((SELECT f.fix_id, f.seq, f.t, f.lat, f.lon, f.acc, f.x, f.y, f.used
             FROM fixes f WHERE f.device = dd.device AND f.t < p_lo ORDER BY f.t DESC LIMIT 2)
          UNION ALL
          SELECT f.fix_id, f.seq, f.t, f.lat, f.lon, f.acc, f.x, f.y, f.used
            FROM fixes f WHERE f.device = dd.device AND f.t BETWEEN p_lo AND p_hi
          UNION ALL
          (SELECT f.fix_id, f.seq, f.t, f.lat, f.lon, f.acc, f.x, f.y, f.used
             FROM fixes f WHERE f.device = dd.device AND f.t > p_hi ORDER BY f.t LIMIT 2)) s) w
  WHERE w.fix_id IS NOT NULL
$$;

-- crime_window's checks and audit, then the subjects' rows and their tracks as arrays
CREATE FUNCTION crime_window_tracks(p_lo double precision, p_hi double precision, p_ref text,
    p_reason text, p_place jsonb DEFAULT NULL)
RETURNS TABLE (kind text, offender_id text, device text, a double precision,
               b double precision, fix_id bigint[], seq bigint[], t double precision[],
               lat double precision[], lon double precision[], acc double precision[],
               x double precision[], y double precision[], used boolean[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE devices text[];
BEGIN
  IF coalesce(btrim(p_ref), '') = '' OR coalesce(btrim(p_reason), '') = '' THEN
    RAISE EXCEPTION 'a crime-mapping query needs a reference number and a reason'
      USING ERRCODE = 'MA001';
  END IF;
  IF p_lo IS NULL OR p_hi IS NULL OR NOT (p_hi >= p_lo) OR p_hi - p_lo > 31 * 86400 + 2 * 3600 THEN
    RAISE EXCEPTION 'a crime-mapping window is at most 31 days' USING ERRCODE = 'MA001';
  END IF;
  PERFORM audit_write('crime_access', json_build_object(
    'ref', btrim(p_ref), 'reason', btrim(p_reason), 'lo', p_lo, 'hi', p_hi,
    'place', p_place)::text);
  RETURN QUERY SELECT 'assignment', s.offender_id, s.device, s.valid_from, s.valid_to,
      NULL::bigint[], NULL::bigint[], NULL::float8[], NULL::float8[], NULL::float8[],
      NULL::float8[], NULL::float8[], NULL::float8[], NULL::boolean[]
    FROM assignments s
    WHERE s.valid_from <= p_hi AND coalesce(s.valid_to, 'Infinity'::float8) >= p_lo;
  RETURN QUERY SELECT 'tag', NULL::text, g.device, g.first_seen, g.last_seen,
      NULL::bigint[], NULL::bigint[], NULL::float8[], NULL::float8[], NULL::float8[],
      NULL::float8[], NULL::float8[], NULL::float8[], NULL::boolean[]
    FROM tags g WHERE g.first_seen <= p_hi AND g.last_seen >= p_lo;
  SELECT array_agg(DISTINCT d ORDER BY d) INTO devices FROM (
    SELECT s.device AS d FROM assignments s
      WHERE s.valid_from <= p_hi AND coalesce(s.valid_to, 'Infinity'::float8) >= p_lo
    UNION SELECT g.device FROM tags g WHERE g.first_seen <= p_hi AND g.last_seen >= p_lo) q;
  IF devices IS NULL THEN RETURN; END IF;
  RETURN QUERY SELECT 'track', NULL::text, w.device, NULL::float8, NULL::float8, w.fix_id,
      w.seq, w.t, w.lat, w.lon, w.acc, w.x, w.y, w.used
    FROM crime_tracks_of(p_lo, p_hi, devices) w;
END $$;
GRANT EXECUTE ON FUNCTION crime_tracks_of(double precision, double precision, text[])
  TO monitorapp_decider;
GRANT EXECUTE ON FUNCTION crime_window_tracks(double precision, double precision, text, text, jsonb)
  TO monitorapp_police_analyst, monitorapp_supervisor;
""",

    # ---- 6: what the decider is told of, and the feed journal a standby replays ---------------
    6: r"""
CREATE FUNCTION notify_handling() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('monitorapp_handling', NEW.alert_id);
  RETURN NULL;
END $$;
CREATE TRIGGER ack_log_notify AFTER INSERT ON ack_log
  FOR EACH ROW EXECUTE FUNCTION notify_handling();
CREATE FUNCTION notify_zone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('monitorapp_zone', NEW.zone_id);
  RETURN NULL;
END $$;
CREATE TRIGGER zones_notify AFTER INSERT ON zones
  FOR EACH ROW EXECUTE FUNCTION notify_zone();

CREATE TABLE feed_journal (
  journal_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  arrival double precision NOT NULL, adapter text NOT NULL, topic text NOT NULL,
  payload bytea NOT NULL);
GRANT SELECT, INSERT, DELETE ON feed_journal TO monitorapp_decider;
""",

    # ---- 7: the notification outbox, its attempts, a supervisor's audited resend ------------
    # (spec v2 §9; centraldb/outbox.py)
    7: OUTBOX_MIGRATION_PG,

    # ---- 8: response protocols and the alert's timeline (issue 21, localdb/handling.py) ---------
    # The same rules as localdb.handling.record_step/close, where the data is: a step only on an
    # acknowledged alert that is not closed, by its owner or a supervisor; a protocol step id or
    # 'other' (with a note); a completed step that asks for a reference has one; closing needs
    # every mandatory step completed or a reason for skipping it. close_alert(text, text) keeps
    # its signature and grants and goes through the same check (no path around it).
    8: r"""
CREATE TABLE response_protocols (
  version integer PRIMARY KEY, doc text NOT NULL, recorded_at double precision NOT NULL,
  recorded_by text NOT NULL);

-- the ordered steps of an alert's protocol: its offender's risk level's, else the type's
CREATE FUNCTION protocol_steps_of(p_alert_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(CASE WHEN o.risk IS NOT NULL AND (p.doc::jsonb -> 'protocols' -> a.type) ? o.risk
                       THEN p.doc::jsonb -> 'protocols' -> a.type -> o.risk
                       ELSE p.doc::jsonb -> 'protocols' -> a.type -> '*' END, '[]'::jsonb)
  FROM alerts a LEFT JOIN offenders o ON o.offender_id = a.offender_id
  LEFT JOIN LATERAL (SELECT r.doc FROM response_protocols r ORDER BY r.version DESC LIMIT 1) p
    ON true
  WHERE a.alert_id = p_alert_id
$$;

CREATE FUNCTION record_step(p_alert_id text, p_step text, p_outcome text, p_reference text,
    p_note text) RETURNS ack_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); who text := session_user;
        steps jsonb; step jsonb; v_ref text := nullif(btrim(p_reference), '');
        v_note text := nullif(btrim(p_note), '');
BEGIN
  PERFORM handling_may();
  IF p_outcome IS NULL OR p_outcome NOT IN ('reached', 'call_made', 'message_left', 'no_answer',
                                            'done', 'not_possible') THEN
    PERFORM handling_refuse(format('unknown outcome %L; one of reached, call_made, message_left, '
      'no_answer, done, not_possible', coalesce(p_outcome, '')));
  END IF;
  IF length(p_reference) > 2000 THEN
    PERFORM handling_refuse('reference is longer than 2000 characters');
  END IF;
  IF length(p_note) > 2000 THEN PERFORM handling_refuse('note is longer than 2000 characters'); END IF;
  a := handling_begin(p_alert_id, who);
  steps := protocol_steps_of(p_alert_id);
  SELECT s INTO step FROM jsonb_array_elements(steps) s WHERE s ->> 'id' = p_step;
  IF p_step IS DISTINCT FROM 'other' AND step IS NULL THEN
    PERFORM handling_refuse(format('%L is not a step of this alert''s protocol', coalesce(p_step, ''))
      || CASE WHEN jsonb_array_length(steps) > 0
              THEN format(' (one of %s, or other)',
                          (SELECT string_agg(s ->> 'id', ', ') FROM jsonb_array_elements(steps) s))
              ELSE ' (use other)' END);
  END IF;
  IF p_step = 'other' AND v_note IS NULL THEN
    PERFORM handling_refuse('step ''other'' needs a note saying what was done');
  END IF;
  IF coalesce((step ->> 'reference')::boolean, false)
      AND p_outcome IN ('reached', 'call_made', 'message_left', 'done')
      AND v_ref IS NULL THEN
    PERFORM handling_refuse(format('step %s needs the reference number it was given', p_step));
  END IF;
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF effective_handling(h, v_at) = 'closed' THEN
    PERFORM handling_refuse(format('alert %s is closed', p_alert_id));
  END IF;
  IF NOT coalesce(h.acknowledged, false) THEN
    PERFORM handling_refuse(format('alert %s must be acknowledged before steps are recorded',
                                   p_alert_id));
  END IF;
  IF h.acked_by IS NOT NULL AND h.acked_by <> who
     AND NOT pg_has_role(session_user, 'monitorapp_supervisor', 'MEMBER') THEN
    RAISE EXCEPTION 'alert % is handled by %: only they or a supervisor record its steps',
      p_alert_id, h.acked_by
      USING ERRCODE = 'MA002', DETAIL = json_build_object('by', h.acked_by, 'at', NULL)::text;
  END IF;
  RETURN ack_append(p_alert_id, v_at, who, 'step', p_step, v_note,
                    '{"outcome":' || py_json_text(p_outcome) || ',"reference":'
                    || py_json_text(v_ref) || '}', NULL);
END $$;

CREATE FUNCTION close_alert_skipping(p_alert_id text, p_note text, p_skipped jsonb)
RETURNS ack_log LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); state text;
        who text := session_user; mandatory text[]; done text[]; missing text[] := '{}';
        sid text; extra text; v_skipped jsonb := coalesce(p_skipped, '{}'::jsonb);
BEGIN
  PERFORM handling_may();
  IF jsonb_typeof(v_skipped) <> 'object' THEN
    PERFORM handling_refuse('skipped steps must be given as {step id: reason}');
  END IF;
  a := handling_begin(p_alert_id, who);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  state := effective_handling(h, v_at);
  IF state = 'closed' THEN
    PERFORM handling_refuse(format('alert %s is already closed', p_alert_id));
  END IF;
  IF state <> 'acknowledged' THEN
    PERFORM handling_refuse(format('alert %s must be acknowledged before it is closed', p_alert_id));
  END IF;
  IF a.state <> 'cleared' THEN
    PERFORM handling_refuse(format('alert %s is still active: it can be closed once it has cleared',
                                   p_alert_id));
  END IF;
  SELECT coalesce(array_agg(e.s ->> 'id' ORDER BY e.ord), '{}') INTO mandatory
    FROM jsonb_array_elements(protocol_steps_of(p_alert_id)) WITH ORDINALITY AS e(s, ord)
    WHERE (e.s ->> 'mandatory')::boolean;
  SELECT coalesce(array_agg(DISTINCT l.action_code), '{}') INTO done FROM ack_log l
    WHERE l.alert_id = p_alert_id AND l.action = 'step'
      AND (l.reason::jsonb ->> 'outcome') IN ('reached', 'call_made', 'message_left', 'done');
  FOREACH sid IN ARRAY mandatory LOOP
    IF NOT sid = ANY(done) AND coalesce(btrim(v_skipped ->> sid), '') = '' THEN
      missing := missing || sid;
    END IF;
  END LOOP;
  IF cardinality(missing) > 0 THEN
    PERFORM handling_refuse(format('alert %s cannot be closed: mandatory step%s %s not done; '
      'record %s or give a reason for skipping', p_alert_id,
      CASE WHEN cardinality(missing) > 1 THEN 's' ELSE '' END, array_to_string(missing, ', '),
      CASE WHEN cardinality(missing) > 1 THEN 'them' ELSE 'it' END));
  END IF;
  SELECT k INTO extra FROM jsonb_object_keys(v_skipped) k WHERE NOT k = ANY(mandatory)
    ORDER BY k LIMIT 1;
  IF extra IS NOT NULL THEN
    PERFORM handling_refuse(format('%L is not a mandatory step of this alert''s protocol', extra));
  END IF;
  FOREACH sid IN ARRAY mandatory LOOP
    IF NOT sid = ANY(done) THEN
      PERFORM ack_append(p_alert_id, v_at, who, 'skip', sid, left(btrim(v_skipped ->> sid), 2000),
                         NULL, NULL);
    END IF;
  END LOOP;
  PERFORM handling_set(p_alert_id, 'closed', who, v_at, NULL, true, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, who, 'close', NULL, p_note, NULL, NULL);
END $$;

-- the close of migration 4, through the same check (its signature and grants are kept)
CREATE OR REPLACE FUNCTION close_alert(p_alert_id text, p_note text) RETURNS ack_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  RETURN close_alert_skipping(p_alert_id, p_note, '{}'::jsonb);
END $$;

-- a centre's protocols, checked by the client (monitorapp.response.protocols) and in outline
-- here; a new version when the text changed; audited as the login that recorded it
CREATE FUNCTION record_protocols(p_doc text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE v jsonb; last response_protocols; n integer;
BEGIN
  IF NOT (pg_has_role(session_user, 'monitorapp_supervisor', 'MEMBER')
          OR pg_has_role(session_user, 'monitorapp_administrator', 'MEMBER')
          OR pg_has_role(session_user, 'monitorapp_decider', 'MEMBER')) THEN
    RAISE EXCEPTION '% may not record response protocols', session_user USING ERRCODE = '42501';
  END IF;
  BEGIN
    v := p_doc::jsonb;
  EXCEPTION WHEN others THEN
    PERFORM handling_refuse('response protocols must be a JSON object');
  END;
  IF jsonb_typeof(v) <> 'object' OR jsonb_typeof(v -> 'protocols') IS DISTINCT FROM 'object'
     OR EXISTS (SELECT 1 FROM jsonb_each(v -> 'protocols') t WHERE jsonb_typeof(t.value) <> 'object')
     OR EXISTS (SELECT 1 FROM jsonb_each(v -> 'protocols') t, jsonb_each(t.value) r
                WHERE jsonb_typeof(r.value) <> 'array')
     OR EXISTS (SELECT 1 FROM jsonb_each(v -> 'protocols') t, jsonb_each(t.value) r,
                  jsonb_array_elements(r.value) s
                WHERE jsonb_typeof(s -> 'id') IS DISTINCT FROM 'string'
                   OR jsonb_typeof(s -> 'mandatory') IS DISTINCT FROM 'boolean') THEN
    PERFORM handling_refuse('response protocols must be {"protocols": {type: {risk: [steps]}}},'
                            ' every step with an id and mandatory true or false');
  END IF;
  SELECT * INTO last FROM response_protocols ORDER BY version DESC LIMIT 1;
  IF FOUND AND last.doc = p_doc THEN RETURN last.version; END IF;
  n := coalesce(last.version, 0) + 1;
  INSERT INTO response_protocols VALUES (n, p_doc, record_now(), session_user);
  PERFORM audit_write('protocols_recorded', json_build_object('version', n)::text);
  RETURN n;
END $$;

GRANT SELECT ON response_protocols TO monitorapp_operator, monitorapp_supervisor,
  monitorapp_police_analyst, monitorapp_trainer, monitorapp_administrator, monitorapp_decider;
GRANT EXECUTE ON FUNCTION protocol_steps_of(text) TO monitorapp_operator, monitorapp_supervisor,
  monitorapp_trainer, monitorapp_administrator, monitorapp_decider;
GRANT EXECUTE ON FUNCTION record_step(text, text, text, text, text),
  close_alert_skipping(text, text, jsonb)
  TO monitorapp_operator, monitorapp_supervisor, monitorapp_trainer;
GRANT EXECUTE ON FUNCTION record_protocols(text)
  TO monitorapp_supervisor, monitorapp_administrator, monitorapp_decider;
""",

    # ---- 9: a tag's track read from the index alone -----------------------------------------
    # Fixes arrive interleaved (every tag's fix of the minute, then the next minute's), so a
    # tag's two hours are ~120 fixes on ~120 different heap pages: at 100 M fixes, past what
    # memory holds, a crime query read ~12,000 random pages. With the columns the track reads
    # (crime_tracks_of, playback) in the (device, t) btree, the read is an index-only scan of
    # a few leaf pages per tag: measured 13,282 buffers and 24 ms before, 1,065 and 7 ms after,
    # at 1.5 M fixes. About 45 bytes more per fix; the old (device, t) index goes.
    9: r"""
CREATE INDEX fixes_track ON fixes (device, t) INCLUDE (fix_id, seq, lat, lon, acc, x, y, used);
DROP INDEX fixes_device_t;

-- the audit actions of migrations 7 and 8 that only their server functions write
-- (resend_notification, record_protocols) are refused from clients too, as migration 4's are
""" + audit_append_sql(RESERVED_ACTIONS + ("notification_resend", "protocols_recorded")),

    # ---- 10: closed months compacted (centraldb/compaction.py) ---------------------------------
    # A month's (device, t) track index fills to about half while it is written (every tag's
    # entries are appended at once, each at its own place, and a full leaf splits in half);
    # rebuilt once the month is over it is about 44 % smaller. Which months were rebuilt, by
    # whom, and the sizes, recorded by the server (and audited) for the administrator's run.
    10: r"""
CREATE TABLE fix_partition_compactions (
  name text PRIMARY KEY, compacted_at double precision NOT NULL, compacted_by text NOT NULL,
  bytes_before bigint NOT NULL, bytes_after bigint NOT NULL, seconds double precision NOT NULL);

CREATE FUNCTION record_fix_compaction(p_name text, p_before bigint, p_after bigint,
    p_seconds double precision) RETURNS fix_partition_compactions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r fix_partition_compactions;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM fix_partitions WHERE name = p_name) THEN
    RAISE EXCEPTION 'no month of fixes is called %', p_name USING ERRCODE = 'MA001';
  END IF;
  INSERT INTO fix_partition_compactions
    VALUES (p_name, record_now(), session_user, p_before, p_after, p_seconds)
    ON CONFLICT (name) DO UPDATE SET compacted_at = excluded.compacted_at,
      compacted_by = excluded.compacted_by, bytes_before = excluded.bytes_before,
      bytes_after = excluded.bytes_after, seconds = excluded.seconds
    RETURNING * INTO r;
  PERFORM audit_write('compact_fixes', json_build_object('partition', p_name,
    'bytes_before', p_before, 'bytes_after', p_after, 'seconds', p_seconds)::text);
  RETURN r;
END $$;

""" + audit_append_sql(RESERVED_ACTIONS + (
        "notification_resend", "protocols_recorded", "compact_fixes")),

    # ---- 11: a month made without waiting for readers ---------------------------------------
    # CREATE TABLE ... PARTITION OF takes an ACCESS EXCLUSIVE lock on fixes, so it waits for
    # every open transaction that has read a fix (a police analyst's crime query, a playback),
    # and the writer's batch with it: past lock_timeout the batch fails and the writer stops.
    # A table of its own attached with ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE, which
    # readers and inserts do not conflict with (the parent's indexes are made on it as it is
    # attached). The month after the one asked for is made only if its lock comes at once:
    # otherwise it is left for the next call, which the writer makes at the first fix of the
    # next month, a month before that one is needed.
    11: r"""
CREATE OR REPLACE FUNCTION ensure_fix_partition(p_t double precision) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE m timestamp; made integer := 0; k integer; lo double precision; hi double precision;
        name text; waited text := current_setting('lock_timeout');
BEGIN
  IF p_t IS NULL OR p_t <> p_t OR p_t IN ('Infinity'::float8, '-Infinity'::float8) THEN
    RAISE EXCEPTION 'a fix time must be finite' USING ERRCODE = 'MA001';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('monitorapp.fix_partitions'));
  FOR k IN 0..1 LOOP
    m := date_trunc('month', to_timestamp(p_t) AT TIME ZONE 'UTC') + make_interval(months => k);
    name := fix_partition_name(m);
    IF to_regclass(name) IS NULL THEN
      lo := extract(epoch FROM m AT TIME ZONE 'UTC');
      hi := extract(epoch FROM (m + interval '1 month') AT TIME ZONE 'UTC');
      BEGIN
        IF k = 1 THEN PERFORM set_config('lock_timeout', '100ms', true); END IF;
        EXECUTE format('CREATE TABLE %I (LIKE fixes INCLUDING DEFAULTS INCLUDING GENERATED)', name);
        EXECUTE format('ALTER TABLE fixes ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       name, lo, hi);
        made := made + 1;
      EXCEPTION WHEN lock_not_available THEN
        IF k = 0 THEN RAISE; END IF;       -- the month asked for: its batch waits for it
      END;
      PERFORM set_config('lock_timeout', waited, true);
    END IF;
  END LOOP;
  RETURN made;
END $$;
""",
}
PRIVILEGES_FROM = 4                # migrations from this one on end with apply_privileges()

SCHEMA_VERSION = max(MIGRATIONS)


def applied_versions(conn) -> list[int]:
    """The migrations recorded in the database (empty for a database without our schema)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return []
    return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def migrate(conn, target: int | None = None) -> int:
    """Apply the missing migrations up to ``target`` (default: all), one transaction each.

    ``conn`` is a psycopg connection (not in autocommit mode). Returns the schema version."""
    target = SCHEMA_VERSION if target is None else target
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('monitorapp.migrate'))")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('monitorapp.migrate'))")
            done = applied_versions(conn)
            unknown = [v for v in done if v not in MIGRATIONS]
            if unknown:
                raise StoreError(f"the database has schema version {max(unknown)}, newer than "
                                 f"this program understands ({SCHEMA_VERSION}); use a newer "
                                 f"monitorapp")
            missing = [v for v in sorted(MIGRATIONS) if v not in done and v <= target]
            if not missing:
                return max(done, default=0)
            v = missing[0]
            conn.execute(MIGRATIONS[v])
            if v > PRIVILEGES_FROM:
                conn.execute("SELECT apply_privileges()")
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (v,))
