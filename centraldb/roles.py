"""Identity and roles in the PostgreSQL record (spec v2 §8, issue 14): migration 4 and its names.

Who acted is what the server established: every person signs in with a PostgreSQL login of
their own (SCRAM-SHA-256; the verifier is computed on the client, so no password crosses the
wire or reaches a log), and every function that writes a name takes it from ``session_user``.
Nothing a client sends names a person: the handling functions have no operator argument,
``audit_append`` ignores the name and time it is given, a zone row's ``created_by`` is set by
a trigger. Times of handling and audit records are the server's (``record_now()``).

The roles (NOLOGIN groups; a login is a member of exactly one, kept in ``accounts.role``):

==================  =============================================================================
``monitorapp_owner``        owns every table, view, sequence and function; nobody logs in as it.
``monitorapp_decider``      the monitor: writes fixes, events, rejections, alerts, the caseload and
                            checkpoints; makes and drops fix partitions; reads fixes.
``monitorapp_operator``     reads the queue and the caseload (never fixes); handles alerts through
                            ``ack_alert``/``close_alert``/``shelve_alert``/``unshelve_alert``;
                            saves zones.
``monitorapp_supervisor``   as an operator, plus the audit log and the audited crime path.
``monitorapp_police_analyst`` reads positions only through ``crime_window`` (audited with its
                            reference and reason before a row is returned) and offenders' names.
``monitorapp_trainer``      handles alerts in a *training* record only; reads the queue.
``monitorapp_administrator`` manages accounts (the account functions below, all audited); reads
                            accounts, the logs and the handling for review; never fixes.
==================  =============================================================================

Account functions (EXECUTE for administrators only; the owner has CREATEROLE, so these are the
only way an account changes): ``create_account(username, role, verifier)``,
``set_account_role``, ``reset_password(username, verifier)``, ``disable_account``,
``lock_account(username, minutes)``, ``unlock_account``; ``expire_lockouts()`` (also the
decider's) ends the locks whose time is up. Each is audited in ``audit_log`` by the server.

What PostgreSQL 15 can and cannot enforce at connect time: it checks the SCRAM proof; it refuses
a role without LOGIN (a disabled or locked account cannot connect with any client, not only the
application); ``auth_delay`` (``shared_preload_libraries``) makes every failed authentication
wait before it is answered. It has no hook that runs on a failed sign-in (the ``login`` event
trigger of PostgreSQL 17 fires on success only), so the server cannot count wrong passwords in
SQL: counting them is the job of a watcher of the server's log that calls ``lock_account``
(documented in the README), and the application's own ``sign_in()`` call only records a
successful sign-in. A person can still change their own password with ``ALTER ROLE`` (PostgreSQL
allows it and PostgreSQL 15 cannot forbid it without a C module); that grants nothing.
"""
from __future__ import annotations

PREFIX = "monitorapp_"
OWNER = PREFIX + "owner"
PERSON_ROLES = ("operator", "supervisor", "police_analyst", "trainer", "administrator")
SERVICE_ROLES = ("decider",)
ROLES = PERSON_ROLES + SERVICE_ROLES


def group(role: str) -> str:
    """The PostgreSQL group role of a monitorapp role name (``operator`` → ``monitorapp_operator``)."""
    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    return PREFIX + role


_ALL = ", ".join(PREFIX + r for r in ROLES)
_PEOPLE = ", ".join(PREFIX + r for r in PERSON_ROLES)
_QUEUE = "monitorapp_operator, monitorapp_supervisor, monitorapp_trainer"

# actions only the server's own functions write into the audit log (never audit_append)
RESERVED_ACTIONS = ("account_created", "account_disabled", "account_locked", "account_unlocked",
                    "lockout_expired", "password_reset", "role_changed", "crime_access",
                    "purge_fixes", "sign_in")

AUDIT_APPEND_SQL = r"""CREATE OR REPLACE FUNCTION audit_append(p_who text, p_action text, p_detail text,
    p_at double precision DEFAULT NULL) RETURNS audit_log LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF p_action IS NULL OR btrim(p_action) = '' OR p_action = ANY({RESERVED}) THEN
    RAISE EXCEPTION 'audit action % is recorded only by the server''s own functions',
      coalesce(p_action, '(none)') USING ERRCODE = '42501';
  END IF;
  RETURN audit_write(p_action, coalesce(p_detail, '{}'));
END $$;
"""

ROLES_MIGRATION = r"""
-- ---- the roles (cluster-wide: made once, shared by every monitorapp database) ----------------
DO $roles$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['monitorapp_owner', 'monitorapp_decider', 'monitorapp_operator',
      'monitorapp_supervisor', 'monitorapp_police_analyst', 'monitorapp_trainer',
      'monitorapp_administrator'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $roles$;
ALTER ROLE monitorapp_owner NOLOGIN CREATEROLE;
GRANT pg_signal_backend TO monitorapp_owner;

-- ---- accounts: the person logins this record knows (the verifier lives in pg_authid only) ---
ALTER TABLE accounts ALTER COLUMN pw_hash DROP NOT NULL;
ALTER TABLE accounts ADD COLUMN locked_until double precision;
ALTER TABLE accounts ADD COLUMN disabled_at double precision;
ALTER TABLE accounts ADD COLUMN changed_at double precision;
ALTER TABLE accounts ADD COLUMN changed_by text;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
-- an administrator sees every account; anyone else only their own
CREATE POLICY accounts_own_or_admin ON accounts FOR SELECT
  USING (username = session_user OR pg_has_role(session_user, 'monitorapp_administrator', 'MEMBER'));

-- ---- the record's clock: the server's (a test cluster's superuser may redefine it) ----------
CREATE FUNCTION record_now() RETURNS double precision LANGUAGE sql STABLE AS $$
  SELECT extract(epoch FROM clock_timestamp())
$$;

-- ---- the audit log: who is session_user, when is record_now() --------------------------------
CREATE FUNCTION audit_write(p_action text, p_detail text) RETURNS audit_log LANGUAGE plpgsql AS $$
DECLARE head chain_heads; r audit_log; v_at double precision; v_who text := session_user;
BEGIN
  v_at := record_now();
  SELECT * INTO head FROM chain_heads WHERE chain = 'audit_log' FOR UPDATE;
  r := ROW(head.seq + 1, v_at, v_who, p_action, p_detail, head.hash,
           chain_hash_audit(head.hash, head.seq + 1, v_at, v_who, p_action, p_detail));
  INSERT INTO audit_log SELECT r.*;
  UPDATE chain_heads SET seq = r.seq, hash = r.hash WHERE chain = 'audit_log';
  RETURN r;
END $$;
-- what clients call: the name and time they pass are not used (the server establishes both)
{AUDIT_APPEND}
-- a zone version names the login that saved it
CREATE FUNCTION zones_saved_by() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.created_by := session_user;
  RETURN NEW;
END $$;
CREATE TRIGGER zones_saved_by BEFORE INSERT ON zones
  FOR EACH ROW EXECUTE FUNCTION zones_saved_by();

-- ---- handling: who is session_user, when is record_now() -------------------------------------
CREATE FUNCTION handling_may() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF pg_has_role(session_user, 'monitorapp_operator', 'MEMBER')
     OR pg_has_role(session_user, 'monitorapp_supervisor', 'MEMBER') THEN
    RETURN;
  END IF;
  IF pg_has_role(session_user, 'monitorapp_trainer', 'MEMBER') THEN
    IF (SELECT value FROM meta WHERE key = 'mode') = 'training' THEN RETURN; END IF;
    RAISE EXCEPTION 'a trainer handles alerts in a training record only' USING ERRCODE = '42501';
  END IF;
  RAISE EXCEPTION '% may not handle alerts', session_user USING ERRCODE = '42501';
END $$;

DROP FUNCTION ack_alert(text, text, text, text, double precision);
DROP FUNCTION close_alert(text, text, text, double precision);
DROP FUNCTION shelve_alert(text, text, text, double precision, double precision);
DROP FUNCTION unshelve_alert(text, text, double precision);

CREATE FUNCTION ack_alert(p_alert_id text, p_action_code text, p_note text) RETURNS ack_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); state text;
        who text := session_user;
BEGIN
  PERFORM handling_may();
  IF p_action_code IS NULL OR p_action_code NOT IN ('contacted_subject', 'contacted_probation',
      'police_informed', 'false_alarm_gps', 'device_fault', 'other') THEN
    PERFORM handling_refuse(format('unknown action code %L; one of contacted_subject, '
      'contacted_probation, police_informed, false_alarm_gps, device_fault, other',
      coalesce(p_action_code, '')));
  END IF;
  IF p_action_code = 'other' AND coalesce(btrim(p_note), '') = '' THEN
    PERFORM handling_refuse('action code ''other'' needs a note saying what was done');
  END IF;
  a := handling_begin(p_alert_id, who);
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
  PERFORM handling_set(p_alert_id, 'acknowledged', who, v_at, p_action_code, true, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, who, 'acknowledge', p_action_code, p_note, NULL, NULL);
END $$;

CREATE FUNCTION close_alert(p_alert_id text, p_note text) RETURNS ack_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); state text;
        who text := session_user;
BEGIN
  PERFORM handling_may();
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
  PERFORM handling_set(p_alert_id, 'closed', who, v_at, NULL, true, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, who, 'close', NULL, p_note, NULL, NULL);
END $$;

CREATE FUNCTION shelve_alert(p_alert_id text, p_reason text, p_until double precision)
RETURNS ack_log LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); state text;
        who text := session_user;
BEGIN
  PERFORM handling_may();
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
  a := handling_begin(p_alert_id, who);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF a.type IN ('strap_tamper', 'exclusion_entered') THEN
    PERFORM handling_refuse(format('a %s alert cannot be shelved', a.type));
  END IF;
  state := effective_handling(h, v_at);
  IF state = 'closed' THEN PERFORM handling_refuse(format('alert %s is closed', p_alert_id)); END IF;
  PERFORM handling_set(p_alert_id, 'shelved', who, v_at, NULL, coalesce(h.acknowledged, false),
                       btrim(p_reason), p_until);
  RETURN ack_append(p_alert_id, v_at, who, 'shelve', NULL, NULL, btrim(p_reason), p_until);
END $$;

CREATE FUNCTION unshelve_alert(p_alert_id text) RETURNS ack_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE a alerts; h alert_handling; v_at double precision := record_now(); who text := session_user;
BEGIN
  PERFORM handling_may();
  a := handling_begin(p_alert_id, who);
  SELECT * INTO h FROM alert_handling WHERE alert_id = p_alert_id;
  IF effective_handling(h, v_at) <> 'shelved' THEN
    PERFORM handling_refuse(format('alert %s is not shelved', p_alert_id));
  END IF;
  PERFORM handling_set(p_alert_id, CASE WHEN h.acknowledged THEN 'acknowledged'
                                        ELSE 'unacknowledged' END,
                       who, v_at, NULL, h.acknowledged, NULL, NULL);
  RETURN ack_append(p_alert_id, v_at, who, 'unshelve', NULL, NULL, NULL, NULL);
END $$;

-- ---- partitions: made and dropped as the owner ------------------------------------------------
ALTER FUNCTION ensure_fix_partition(double precision) SECURITY DEFINER
  SET search_path = public, pg_temp;
DROP FUNCTION drop_fix_partitions(double precision, text, double precision, double precision);
CREATE FUNCTION drop_fix_partitions(p_cutoff double precision,
    p_retention_days double precision DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
  PERFORM audit_write('purge_fixes',
    json_build_object('cutoff', p_cutoff, 'deleted', total, 'partitions', dropped,
                      'retention_days', p_retention_days)::text);
  RETURN total;
END $$;

-- ---- crime mapping: the one way a police analyst reads positions -----------------------------
-- Records who (session_user), the reference, the reason and the window (and the place, when
-- given) in the audit log *before* any row is returned; the window is at most 31 days plus the
-- margins. Rows: kind 'assignment' (offender_id, device, a = valid_from, b = valid_to),
-- 'tag' (device, a = first_seen, b = last_seen) and 'fix' (every fix of those tags in the
-- window, and each tag's last fix before it and first after it).
CREATE FUNCTION crime_window(p_lo double precision, p_hi double precision, p_ref text,
    p_reason text, p_place jsonb DEFAULT NULL)
RETURNS TABLE (kind text, offender_id text, device text, a double precision,
               b double precision, fix_id bigint, seq bigint, t double precision,
               lat double precision, lon double precision, acc double precision,
               x double precision, y double precision, used boolean)
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
      NULL::bigint, NULL::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
      NULL::float8, NULL::float8, NULL::boolean
    FROM assignments s
    WHERE s.valid_from <= p_hi AND coalesce(s.valid_to, 'Infinity'::float8) >= p_lo;
  RETURN QUERY SELECT 'tag', NULL::text, g.device, g.first_seen, g.last_seen,
      NULL::bigint, NULL::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
      NULL::float8, NULL::float8, NULL::boolean
    FROM tags g WHERE g.first_seen <= p_hi AND g.last_seen >= p_lo;
  SELECT array_agg(DISTINCT d ORDER BY d) INTO devices FROM (
    SELECT s.device AS d FROM assignments s
      WHERE s.valid_from <= p_hi AND coalesce(s.valid_to, 'Infinity'::float8) >= p_lo
    UNION SELECT g.device FROM tags g WHERE g.first_seen <= p_hi AND g.last_seen >= p_lo) q;
  IF devices IS NULL THEN RETURN; END IF;
  RETURN QUERY SELECT 'fix', NULL::text, f.device, NULL::float8, NULL::float8, f.fix_id, f.seq,
      f.t, f.lat, f.lon, f.acc, f.x, f.y, f.used
    FROM fixes f WHERE f.device = ANY(devices) AND f.t BETWEEN p_lo AND p_hi;
  RETURN QUERY SELECT 'fix', NULL::text, n.device, NULL::float8, NULL::float8, n.fix_id, n.seq,
      n.t, n.lat, n.lon, n.acc, n.x, n.y, n.used
    FROM unnest(devices) AS dd(device)
    CROSS JOIN LATERAL ((SELECT f.fix_id, f.device, f.seq, f.t, f.lat, f.lon, f.acc, f.x, f.y,
                                f.used FROM fixes f
                         WHERE f.device = dd.device AND f.t < p_lo ORDER BY f.t DESC LIMIT 1)
      UNION ALL (SELECT f.fix_id, f.device, f.seq, f.t, f.lat, f.lon, f.acc, f.x, f.y, f.used
                 FROM fixes f WHERE f.device = dd.device AND f.t > p_hi ORDER BY f.t LIMIT 1)) n;
END $$;

-- ---- accounts: the only way an account or a role changes; every change audited --------------
CREATE FUNCTION account_refuse(msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', msg USING ERRCODE = 'MA003';
END $$;

CREATE FUNCTION account_row(p_username text) RETURNS accounts LANGUAGE plpgsql AS $$
DECLARE r accounts;
BEGIN
  SELECT * INTO r FROM accounts WHERE username = p_username FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM account_refuse(format('no such account: %s', coalesce(p_username, '(none)')));
  END IF;
  RETURN r;
END $$;

CREATE FUNCTION account_role_check(p_role text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_role IS NULL OR p_role NOT IN ('operator', 'supervisor', 'police_analyst', 'trainer',
                                      'administrator', 'decider') THEN
    PERFORM account_refuse(format('unknown role %L; one of operator, supervisor, '
      'police_analyst, trainer, administrator, decider', coalesce(p_role, '')));
  END IF;
END $$;

CREATE FUNCTION account_verifier_check(p_verifier text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_verifier IS NULL OR p_verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
    PERFORM account_refuse('a password is given as a SCRAM-SHA-256 verifier computed by the client');
  END IF;
END $$;

CREATE FUNCTION account_not_self(p_username text, what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_username = session_user THEN
    PERFORM account_refuse(format('an administrator cannot %s their own account: ask another '
                                  'administrator', what));
  END IF;
END $$;

CREATE FUNCTION create_account(p_username text, p_role text, p_verifier text) RETURNS accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts; v_at double precision := record_now();
BEGIN
  IF p_username IS NULL OR p_username !~ '^[a-z][a-z0-9_.-]{1,62}$' THEN
    PERFORM account_refuse('a user name is 2 to 63 lower-case letters, digits, ".", "_" or "-", '
                           'starting with a letter');
  END IF;
  IF p_username LIKE 'pg\_%' OR p_username LIKE 'monitorapp\_%' THEN
    PERFORM account_refuse(format('%s is a reserved name', p_username));
  END IF;
  PERFORM account_role_check(p_role);
  PERFORM account_verifier_check(p_verifier);
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_username)
     OR EXISTS (SELECT 1 FROM accounts WHERE username = p_username) THEN
    PERFORM account_refuse(format('an account or database role named %s already exists',
                                  p_username));
  END IF;
  EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', p_username,
                 p_verifier, 'monitorapp_' || p_role);
  INSERT INTO accounts (username, role, pw_hash, created_at, created_by, password_changed_at,
                        changed_at, changed_by)
  VALUES (p_username, p_role, NULL, v_at, session_user, v_at, v_at, session_user)
  RETURNING * INTO r;
  PERFORM audit_write('account_created',
                      json_build_object('username', p_username, 'role', p_role)::text);
  RETURN r;
END $$;

CREATE FUNCTION set_account_role(p_username text, p_role text) RETURNS accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts; old text;
BEGIN
  PERFORM account_role_check(p_role);
  PERFORM account_not_self(p_username, 'change the role of');
  r := account_row(p_username);
  old := r.role;
  IF old = p_role THEN RETURN r; END IF;
  EXECUTE format('REVOKE %I FROM %I', 'monitorapp_' || old, p_username);
  EXECUTE format('GRANT %I TO %I', 'monitorapp_' || p_role, p_username);
  UPDATE accounts SET role = p_role, changed_at = record_now(), changed_by = session_user
    WHERE username = p_username RETURNING * INTO r;
  PERFORM audit_write('role_changed', json_build_object('username', p_username, 'from', old,
                                                        'to', p_role)::text);
  RETURN r;
END $$;

CREATE FUNCTION reset_password(p_username text, p_verifier text) RETURNS accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts; v_at double precision := record_now();
BEGIN
  PERFORM account_verifier_check(p_verifier);
  r := account_row(p_username);
  EXECUTE format('ALTER ROLE %I PASSWORD %L', p_username, p_verifier);
  UPDATE accounts SET password_changed_at = v_at, changed_at = v_at, changed_by = session_user
    WHERE username = p_username RETURNING * INTO r;
  PERFORM audit_write('password_reset', json_build_object('username', p_username)::text);
  RETURN r;
END $$;

CREATE FUNCTION disable_account(p_username text) RETURNS accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts; v_at double precision := record_now(); ended integer; pid_ integer;
BEGIN
  PERFORM account_not_self(p_username, 'disable');
  r := account_row(p_username);
  IF r.disabled THEN RETURN r; END IF;
  EXECUTE format('ALTER ROLE %I NOLOGIN', p_username);
  UPDATE accounts SET disabled = true, disabled_at = v_at, changed_at = v_at,
                      changed_by = session_user
    WHERE username = p_username RETURNING * INTO r;
  -- a disabled person's open sessions end now (one by one: the filter comes first)
  ended := 0;
  FOR pid_ IN SELECT pid FROM pg_stat_activity
              WHERE usename = p_username AND pid <> pg_backend_pid() LOOP
    IF pg_terminate_backend(pid_) THEN ended := ended + 1; END IF;
  END LOOP;
  PERFORM audit_write('account_disabled', json_build_object('username', p_username,
                                                            'sessions_ended', ended)::text);
  RETURN r;
END $$;

CREATE FUNCTION lock_account(p_username text, p_minutes double precision DEFAULT 15)
RETURNS accounts LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts; v_at double precision := record_now();
BEGIN
  IF p_minutes IS NULL OR NOT (p_minutes > 0 AND p_minutes <= 7 * 24 * 60) THEN
    PERFORM account_refuse('a lock lasts more than 0 minutes and at most 7 days');
  END IF;
  PERFORM account_not_self(p_username, 'lock');
  r := account_row(p_username);
  EXECUTE format('ALTER ROLE %I NOLOGIN', p_username);
  UPDATE accounts SET locked = true, locked_at = v_at, locked_until = v_at + p_minutes * 60,
                      changed_at = v_at, changed_by = session_user
    WHERE username = p_username RETURNING * INTO r;
  PERFORM audit_write('account_locked', json_build_object('username', p_username,
                                                          'until', r.locked_until)::text);
  RETURN r;
END $$;

CREATE FUNCTION account_open(p_username text, p_action text) RETURNS accounts
LANGUAGE plpgsql AS $$
DECLARE r accounts; v_at double precision := record_now();
BEGIN
  r := account_row(p_username);
  UPDATE accounts SET locked = false, locked_at = NULL, locked_until = NULL, failures = 0,
                      changed_at = v_at, changed_by = session_user
    WHERE username = p_username RETURNING * INTO r;
  IF NOT r.disabled THEN
    EXECUTE format('ALTER ROLE %I LOGIN', p_username);
  END IF;
  PERFORM audit_write(p_action, json_build_object('username', p_username,
                                                  'disabled', r.disabled)::text);
  RETURN r;
END $$;

CREATE FUNCTION unlock_account(p_username text) RETURNS accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  RETURN account_open(p_username, 'account_unlocked');
END $$;

CREATE FUNCTION expire_lockouts() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE u text; n integer := 0;
BEGIN
  FOR u IN SELECT username FROM accounts WHERE locked AND locked_until <= record_now()
           ORDER BY username FOR UPDATE LOOP
    PERFORM account_open(u, 'lockout_expired');
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- the application calls this right after connecting: who the server says this is, audited
CREATE FUNCTION sign_in() RETURNS audit_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r accounts;
BEGIN
  SELECT * INTO r FROM accounts WHERE accounts.username = session_user FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION '% has no monitorapp account in this record', session_user
      USING ERRCODE = '42501';
  END IF;
  IF r.disabled OR r.locked THEN
    RAISE EXCEPTION 'the account % is %', r.username,
      CASE WHEN r.disabled THEN 'disabled' ELSE 'locked' END USING ERRCODE = '42501';
  END IF;
  UPDATE accounts SET last_sign_in = record_now(), failures = 0
    WHERE accounts.username = session_user;
  RETURN audit_write('sign_in', json_build_object('role', r.role)::text);
END $$;

-- ---- who owns what, who may do what ------------------------------------------------------------
-- run at the end of this and of every later migration (centraldb.schema.migrate does it)
CREATE FUNCTION apply_privileges() RETURNS void LANGUAGE plpgsql AS $$
DECLARE o record;
BEGIN
  FOR o IN SELECT c.oid::regclass AS rel FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype = 'e')
             AND pg_get_userbyid(c.relowner) <> 'monitorapp_owner' LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO monitorapp_owner', o.rel);
  END LOOP;
  FOR o IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e') LOOP
    IF (SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = o.fn) <> 'monitorapp_owner' THEN
      EXECUTE format('ALTER FUNCTION %s OWNER TO monitorapp_owner', o.fn);
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', o.fn);
  END LOOP;
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  GRANT USAGE, CREATE ON SCHEMA public TO monitorapp_owner;   -- new months of fixes
  GRANT USAGE ON SCHEMA public TO {ALL};

  GRANT SELECT ON meta, schema_migrations, chain_heads TO {ALL};
  GRANT SELECT ON accounts TO {ALL};                 -- row-level security: own row or admin
  -- the decider: everything the monitor writes
  GRANT SELECT, INSERT, DELETE ON fixes, events, rejected TO monitorapp_decider;
  GRANT SELECT, INSERT, UPDATE ON tags, alerts, checkpoints, offenders, assignments,
    requirements TO monitorapp_decider;
  GRANT SELECT, INSERT ON alert_changes, zones, meta TO monitorapp_decider;
  GRANT SELECT ON alert_handling, ack_log, audit_log, chain_heads, fix_partitions
    TO monitorapp_decider;
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO monitorapp_decider;
  GRANT EXECUTE ON FUNCTION ensure_fix_partition(double precision),
    drop_fix_partitions(double precision, double precision), expire_lockouts()
    TO monitorapp_decider;
  -- the queue
  GRANT SELECT ON alerts, alert_changes, alert_handling, ack_log, chain_heads, events,
    offenders, tags, assignments, zones, requirements TO {QUEUE};
  GRANT INSERT ON zones TO monitorapp_operator, monitorapp_supervisor;
  GRANT EXECUTE ON FUNCTION ack_alert(text, text, text), close_alert(text, text),
    shelve_alert(text, text, double precision), unshelve_alert(text) TO {QUEUE};
  -- supervisors and administrators review; administrators manage accounts
  GRANT SELECT ON audit_log TO monitorapp_supervisor, monitorapp_administrator;
  GRANT SELECT ON alerts, alert_changes, alert_handling, ack_log, chain_heads, offenders, zones
    TO monitorapp_administrator;
  GRANT EXECUTE ON FUNCTION create_account(text, text, text), set_account_role(text, text),
    reset_password(text, text), disable_account(text), lock_account(text, double precision),
    unlock_account(text), expire_lockouts() TO monitorapp_administrator;
  -- positions for a police analyst (and a supervisor): only through the audited path
  GRANT SELECT ON offenders TO monitorapp_police_analyst;
  GRANT EXECUTE ON FUNCTION crime_window(double precision, double precision, text, text, jsonb)
    TO monitorapp_police_analyst, monitorapp_supervisor;
  -- everyone signs in and may add their own audit records (never a reserved action)
  GRANT EXECUTE ON FUNCTION sign_in(), audit_append(text, text, text, double precision),
    record_now() TO {ALL};
END $$;
SELECT apply_privileges();
"""

def audit_append_sql(reserved: tuple[str, ...]) -> str:
    """``audit_append``, the clients' way into the audit log, refusing the ``reserved`` actions
    (those only the server's own functions record); each migration that reserves more
    replaces it with this."""
    return AUDIT_APPEND_SQL.replace(
        "{RESERVED}", "ARRAY[" + ", ".join(f"'{a}'" for a in reserved) + "]")


ROLES_MIGRATION = (ROLES_MIGRATION.replace("{AUDIT_APPEND}", audit_append_sql(RESERVED_ACTIONS))
                   .replace("{RESERVED}", "ARRAY[" + ", ".join(f"'{a}'" for a in RESERVED_ACTIONS) + "]")
                   .replace("{ALL}", _ALL).replace("{QUEUE}", _QUEUE))
