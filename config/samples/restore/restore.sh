#!/usr/bin/env bash
# restore.sh: load a URedis backup (an RDB file) into a running Redis.
#
#   restore.sh [all|download|restore]          (default: all)
#
#   download  fetch BACKUP_URL into BACKUP_FILE with curl: HTTPS only,
#             redirects included, at most MAX_DOWNLOAD_BYTES, and only while
#             the link stays valid for MIN_VALIDITY (the refresh guard below)
#   restore   check BACKUP_FILE with redis-check-rdb, start a temporary
#             redis-server on it (loopback only, nothing saved) and copy
#             every key of every database to the target with
#             MIGRATE ... COPY REPLACE, in batches
#   all       download when BACKUP_FILE does not exist yet, then restore
#
# Environment:
#   BACKUP_FILE      path of the RDB file (default: $TMPDIR/backup.rdb)
#   BACKUP_URL       download link, read only when BACKUP_FILE does not exist.
#                    It is a bearer credential: this script never prints it.
#                    Only an https:// link without control characters is used;
#                    a redirect to anything but https:// is refused.
#   EXPIRES_AT       optional, RFC 3339 UTC (the operator's `expiresAt`):
#                    the download starts only if the link stays valid for
#                    MIN_VALIDITY seconds from now (see the refresh guard)
#   MAX_DOWNLOAD_BYTES  largest backup downloaded, in bytes (default
#                    4294967296, 4 GiB, the sample Job's emptyDir); a larger
#                    one fails the download and nothing is kept. curl older
#                    than 8.4 enforces it only when the server announces the
#                    size; the size is checked again after the download.
#   MIN_DOWNLOAD_RATE  the slowest download expected, in bytes per second
#                    (default 10485760, 10 MiB/s)
#   MIN_VALIDITY     seconds the link must stay valid when the download
#                    starts (default: the time MAX_DOWNLOAD_BYTES takes at
#                    MIN_DOWNLOAD_RATE, plus 60)
#
# The refresh guard, when EXPIRES_AT leaves less than MIN_VALIDITY and
# EXPORT_NAME is set: the script asks the operator for a new link through
# the Kubernetes API with the pod's service account (the sample's Role
# allows exactly get and patch on that RedisBackupExport and get on its
# Secret), as `kubectl rbe url --min-validity` does. It fails at once when
# links of the export do not live MIN_VALIDITY (their expiresAt minus
# lastRefreshTime); otherwise it sets the annotation
# uredis.dezai.com/refresh-requested-at to a new value, waits until
# status.lastHandledRefreshRequest acknowledges it (REFRESH_TIMEOUT), and
# reads the new link from the Secret. A refresh that failed or that the
# operator declined (forced refreshes are rationed) fails the download
# with the reason; the Job's retry starts again.
#   EXPORT_NAME      the RedisBackupExport whose link BACKUP_URL is
#   LINK_SECRET      its target Secret (default: EXPORT_NAME)
#   LINK_KEY, EXPIRES_KEY  the Secret's keys of the link and its expiry
#                    (default backupPath and expiresAt: spec.target.keys)
#   REFRESH_TIMEOUT  seconds to wait for the operator's answer (default 120)
#   EXPORT_NAMESPACE the export's namespace (default: the pod's)
#   SERVICE_ACCOUNT_DIR  where the pod's token, ca.crt and namespace are
#                    (default /var/run/secrets/kubernetes.io/serviceaccount)
#   KUBERNETES_API   the API server (default from KUBERNETES_SERVICE_HOST
#                    and KUBERNETES_SERVICE_PORT, which every pod has)
#   CURL_CA_BUNDLE   optional, curl's own: a PEM file of the CAs to trust
#                    instead of the system's (for a private storage endpoint)
#   TARGET_HOST      target Redis host (required for restore)
#   TARGET_PORT      target Redis port (default 6379)
#   TARGET_USERNAME  optional ACL user (Redis 6+); needs TARGET_PASSWORD
#   TARGET_PASSWORD  optional password of the target
#   TEMP_PORT        loopback port of the temporary redis-server (default 6390)
#   BATCH_SIZE       keys per MIGRATE (default 100)
#   MIGRATE_TIMEOUT_MS  MIGRATE timeout in milliseconds (default 5000)
#   STARTUP_TIMEOUT  seconds to wait for the temporary server to load (default 600)
#
# Needs: redis-server, redis-cli and redis-check-rdb for restore (the
# redis-server must be at least as new as the Redis that wrote the backup),
# curl for download; plus sh, awk, sed, sort, tr, wc, date, mktemp (and
# base64, od and a `date -d` that reads "YYYY-MM-DD hh:mm:ss", as GNU and
# busybox date do, for the refresh guard).
#
# Written in POSIX sh plus `pipefail`, so that it also runs under busybox sh
# (`sh restore.sh download` in the curl image, which has no bash). The keys'
# Redis TTLs are kept; keys already expired in the backup are not restored.
# Exits non-zero on any failure.
set -euo pipefail

mode="${1:-all}"
umask 077

log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

case "$mode" in
all | download | restore) ;;
*) die "unknown mode '$mode' (expected all, download or restore)" ;;
esac

: "${TMPDIR:=/tmp}"
: "${BACKUP_FILE:=$TMPDIR/backup.rdb}"
: "${TARGET_PORT:=6379}"
: "${TEMP_PORT:=6390}"
: "${BATCH_SIZE:=100}"
: "${MIGRATE_TIMEOUT_MS:=5000}"
: "${STARTUP_TIMEOUT:=600}"
: "${MAX_DOWNLOAD_BYTES:=4294967296}"
: "${MIN_DOWNLOAD_RATE:=10485760}"
: "${REFRESH_TIMEOUT:=120}"
: "${SERVICE_ACCOUNT_DIR:=/var/run/secrets/kubernetes.io/serviceaccount}"
: "${LINK_KEY:=backupPath}"
: "${EXPIRES_KEY:=expiresAt}"

for n in "$TARGET_PORT" "$TEMP_PORT" "$BATCH_SIZE" "$MIGRATE_TIMEOUT_MS" "$STARTUP_TIMEOUT" "$MAX_DOWNLOAD_BYTES" "$MIN_DOWNLOAD_RATE" "$REFRESH_TIMEOUT" "${MIN_VALIDITY:-0}"; do
	case "$n" in
	'' | *[!0-9]*) die "'$n' is not a number (TARGET_PORT, TEMP_PORT, BATCH_SIZE, MIGRATE_TIMEOUT_MS, STARTUP_TIMEOUT, MAX_DOWNLOAD_BYTES, MIN_DOWNLOAD_RATE, REFRESH_TIMEOUT, MIN_VALIDITY)" ;;
	esac
done
[ "$BATCH_SIZE" -gt 0 ] || die "BATCH_SIZE must be at least 1"
[ "$MAX_DOWNLOAD_BYTES" -gt 0 ] || die "MAX_DOWNLOAD_BYTES must be at least 1"
[ "$MIN_DOWNLOAD_RATE" -gt 0 ] || die "MIN_DOWNLOAD_RATE must be at least 1"
# The largest backup at the slowest rate, plus a minute.
: "${MIN_VALIDITY:=$(((MAX_DOWNLOAD_BYTES + MIN_DOWNLOAD_RATE - 1) / MIN_DOWNLOAD_RATE + 60))}"
: "${LINK_SECRET:=${EXPORT_NAME:-}}"
# Names as Kubernetes writes them: nothing to escape in a URL or a pattern.
for name in "${EXPORT_NAME:-}" "$LINK_SECRET" "${EXPORT_NAMESPACE:-}" "$LINK_KEY" "$EXPIRES_KEY"; do
	case "$name" in
	*[!-.a-zA-Z0-9_]*) die "'$name' is not a Kubernetes name (EXPORT_NAME, LINK_SECRET, EXPORT_NAMESPACE, LINK_KEY, EXPIRES_KEY)" ;;
	esac
done

work=""
temp_pid=""
cleanup() {
	status=$?
	stop_temp_server
	# The work directory may hold the target's password (in MIGRATE commands).
	[ -z "$work" ] || rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# quote VALUE: VALUE as a double-quoted redis-cli argument (binary safe).
quote() {
	printf '"'
	printf '%s\n' "$1" | sed 's/[\\"]/\\&/g' | awk 'NR > 1 { printf "%s", "\\n" } { printf "%s", $0 }'
	printf '"'
}

# RFC 3339 UTC timestamps of this exact form compare as strings.
is_utc_timestamp() {
	case "$1" in
	[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z) return 0 ;;
	*) return 1 ;;
	esac
}

# to_epoch TIME: an RFC 3339 UTC time in Unix seconds.
to_epoch() {
	is_utc_timestamp "$1" || die "'$1' is not an RFC 3339 UTC time like 2026-11-27T12:00:00Z"
	date -u -d "$(printf '%s' "$1" | sed 's/T/ /; s/Z$//')" +%s 2>/dev/null || die "date cannot read '$1'"
}

# seconds_left TIME: how long until TIME (negative once past).
seconds_left() { echo $(($(to_epoch "$1") - $(date -u +%s))); }

# validity_text SECONDS: "valid for 42s" or "expired".
validity_text() {
	if [ "$1" -gt 0 ]; then echo "valid for $1s only"; else echo "expired"; fi
}

# check_link: refuse a link curl must not see, before anything looks at it.
check_link() {
	# A newline in the link would start a new line of curl's config below,
	# i.e. any curl option: refuse every control character.
	case "$BACKUP_URL" in
	*[[:cntrl:]]*) die "BACKUP_URL contains control characters (newline, tab, ...): refused" ;;
	https://*) ;;
	*) die "BACKUP_URL is not an https:// link: refused" ;;
	esac
}

# ensure_valid_link: the link must stay valid for MIN_VALIDITY seconds;
# otherwise the operator is asked for a new one (with EXPORT_NAME).
ensure_valid_link() {
	[ -n "${EXPIRES_AT:-}" ] || return 0
	is_utc_timestamp "$EXPIRES_AT" || die "EXPIRES_AT '$EXPIRES_AT' is not an RFC 3339 UTC time like 2026-11-27T12:00:00Z"
	left="$(seconds_left "$EXPIRES_AT")"
	if [ "$left" -ge "$MIN_VALIDITY" ]; then
		log "link valid until $EXPIRES_AT (${left}s; MIN_VALIDITY ${MIN_VALIDITY}s)"
		return 0
	fi
	[ -n "${EXPORT_NAME:-}" ] || die "the link is $(validity_text "$left"), less than MIN_VALIDITY (${MIN_VALIDITY}s): set EXPORT_NAME (and give the pod the sample's Role) to have the operator refresh it, or rerun later"
	log "the link is $(validity_text "$left"), less than MIN_VALIDITY (${MIN_VALIDITY}s): asking the operator for a new one"
	refresh_link
}

# api METHOD PATH OUT [BODY]: one request to the Kubernetes API server with
# the pod's service account token, the answer into OUT. The token reaches
# curl on stdin, never the command line or the log.
api() {
	[ -r "$SERVICE_ACCOUNT_DIR/token" ] || die "no service account token in $SERVICE_ACCOUNT_DIR: the pod needs one to ask for a refresh (see the sample Job)"
	token="$(tr -d '\r\n' <"$SERVICE_ACCOUNT_DIR/token")"
	case "$token" in *[!-._A-Za-z0-9]*) die "the service account token holds unexpected characters: refused" ;; esac
	rc=0
	if [ -n "${4:-}" ]; then
		code="$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
			curl --config - --silent --proto =https --cacert "$SERVICE_ACCOUNT_DIR/ca.crt" \
				--user-agent uredis-restore.sh --connect-timeout 10 --max-time 30 \
				--request "$1" --header 'Content-Type: application/merge-patch+json' --data-binary "@$4" \
				--output "$3" --write-out '%{http_code}' "$KUBERNETES_API$2?pretty=false" 2>/dev/null)" || rc=$?
	else
		code="$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
			curl --config - --silent --proto =https --cacert "$SERVICE_ACCOUNT_DIR/ca.crt" \
				--user-agent uredis-restore.sh --connect-timeout 10 --max-time 30 \
				--request "$1" --output "$3" --write-out '%{http_code}' "$KUBERNETES_API$2?pretty=false" 2>/dev/null)" || rc=$?
	fi
	token=""
	[ "$rc" -eq 0 ] || die "$1 $2 failed (curl exit code $rc)"
	case "$code" in
	200) ;;
	401 | 403) die "the API server refused $1 $2 (HTTP $code): the pod's service account needs the sample's Role (get and patch on the RedisBackupExport $EXPORT_NAME, get on the Secret $LINK_SECRET)" ;;
	404) die "$1 $2: not found (HTTP 404)" ;;
	*) die "$1 $2: HTTP $code" ;;
	esac
}

# status_field FILE NAME: a field of the status of the resource in FILE
# (the API server's compact JSON); "" when absent.
status_field() {
	sed -n 's/.*"status":{//; s/^.*"'"$2"'":"\{0,1\}\([^",}]*\).*$/\1/p' "$1" | head -n 1
}

# ready_summary FILE: the Ready condition as "Status/Reason: message".
ready_summary() {
	summary="$(sed -n -E 's/.*"message":"(([^"\\]|\\.)*)",("observedGeneration":[0-9]+,)?"reason":"([A-Za-z]+)","status":"([A-Za-z]+)","type":"Ready".*/\5\/\4: \1/p' "$1")"
	echo "${summary:-no Ready condition}"
}

# secret_value FILE KEY: the decoded value of KEY in the Secret in FILE.
secret_value() {
	key_pattern="$(printf '%s' "$2" | sed 's/\./\\./g')"
	sed -n 's/.*"data":{\([^}]*\)}.*/\1/p' "$1" | tr ',' '\n' |
		sed -n 's/^"'"$key_pattern"'":"\([A-Za-z0-9+\/=]*\)"$/\1/p' | base64 -d 2>/dev/null
}

# refresh_link: the refresh guard (see the header).
refresh_link() {
	[ -n "$LINK_SECRET" ] || die "LINK_SECRET is not set"
	if [ -z "${KUBERNETES_API:-}" ]; then
		[ -n "${KUBERNETES_SERVICE_HOST:-}" ] || die "KUBERNETES_API (or KUBERNETES_SERVICE_HOST) is not set: not in a pod?"
		host="$KUBERNETES_SERVICE_HOST"
		case "$host" in *:*) host="[$host]" ;; esac
		KUBERNETES_API="https://$host:${KUBERNETES_SERVICE_PORT:-443}"
	fi
	KUBERNETES_API="${KUBERNETES_API%/}"
	case "$KUBERNETES_API" in
	https://*) ;;
	*) die "KUBERNETES_API is not an https:// URL: refused (the token would travel in clear)" ;;
	esac
	if [ -z "${EXPORT_NAMESPACE:-}" ]; then
		EXPORT_NAMESPACE="$(cat "$SERVICE_ACCOUNT_DIR/namespace" 2>/dev/null)" || die "EXPORT_NAMESPACE is not set and $SERVICE_ACCOUNT_DIR/namespace cannot be read"
		case "$EXPORT_NAMESPACE" in '' | *[!-.a-z0-9]*) die "'$EXPORT_NAMESPACE' is not a namespace" ;; esac
	fi
	export_path="/apis/uredis.dezai.com/v1alpha1/namespaces/$EXPORT_NAMESPACE/redisbackupexports/$EXPORT_NAME"
	secret_path="/api/v1/namespaces/$EXPORT_NAMESPACE/secrets/$LINK_SECRET"

	api GET "$export_path" "$work/export.json"
	obtained="$(status_field "$work/export.json" lastRefreshTime)"
	expires="$(status_field "$work/export.json" expiresAt)"
	if [ -n "$obtained" ] && [ -n "$expires" ]; then
		lifetime=$(($(to_epoch "$expires") - $(to_epoch "$obtained")))
		[ "$MIN_VALIDITY" -lt "$lifetime" ] || die "links of $EXPORT_NAME live about ${lifetime}s (the last was obtained at $obtained and expires at $expires): none stays valid for MIN_VALIDITY (${MIN_VALIDITY}s); lower MIN_VALIDITY, or MAX_DOWNLOAD_BYTES, or raise MIN_DOWNLOAD_RATE"
	fi
	failed_at="$(status_field "$work/export.json" lastFailureTime)"
	failures="$(status_field "$work/export.json" failureCount)"

	# A value never used before: the time and a random suffix.
	request="$(date -u +%Y-%m-%dT%H:%M:%SZ)-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
	printf '{"metadata":{"annotations":{"uredis.dezai.com/refresh-requested-at":"%s"}}}' "$request" >"$work/patch.json"
	api PATCH "$export_path" "$work/export.json" "$work/patch.json"
	log "refresh requested ($request); waiting at most ${REFRESH_TIMEOUT}s for the operator"
	waited=0
	while [ "$(status_field "$work/export.json" lastHandledRefreshRequest)" != "$request" ]; do
		[ "$waited" -lt "$REFRESH_TIMEOUT" ] || die "the operator did not answer the refresh request within ${REFRESH_TIMEOUT}s (is it running?); Ready: $(ready_summary "$work/export.json")"
		sleep 1
		waited=$((waited + 1))
		api GET "$export_path" "$work/export.json"
	done
	if [ "$(status_field "$work/export.json" lastRefreshTime)" = "$obtained" ]; then
		if [ "$(status_field "$work/export.json" lastFailureTime)" != "$failed_at" ] || [ "$(status_field "$work/export.json" failureCount)" != "$failures" ]; then
			die "the refresh failed: $(ready_summary "$work/export.json")"
		fi
		die "the operator declined the refresh request: forced refreshes come at least --forced-refresh-min-interval (30s by default) after the last attempt, and none while the credentials are rejected (its RefreshRequestDeclined event says which); rerun later"
	fi

	api GET "$secret_path" "$work/secret.json"
	BACKUP_URL="$(secret_value "$work/secret.json" "$LINK_KEY")"
	EXPIRES_AT="$(secret_value "$work/secret.json" "$EXPIRES_KEY")"
	rm -f "$work/secret.json"
	[ -n "$BACKUP_URL" ] || die "the Secret $LINK_SECRET has no key $LINK_KEY"
	is_utc_timestamp "$EXPIRES_AT" || die "the Secret $LINK_SECRET has no RFC 3339 UTC time in its key $EXPIRES_KEY"
	left="$(seconds_left "$EXPIRES_AT")"
	[ "$left" -ge "$MIN_VALIDITY" ] || die "the new link is $(validity_text "$left"), less than MIN_VALIDITY (${MIN_VALIDITY}s)"
	log "new link valid until $EXPIRES_AT (${left}s)"
}

download() {
	[ -n "${BACKUP_URL:-}" ] || die "BACKUP_FILE $BACKUP_FILE does not exist and BACKUP_URL is not set"
	check_link
	ensure_valid_link
	check_link # again: the guard may have read a new link
	command -v curl >/dev/null 2>&1 || die "curl is not installed"
	mkdir -p "$(dirname "$BACKUP_FILE")"
	part="$BACKUP_FILE.part"
	rm -f "$part"
	log "downloading the backup to $BACKUP_FILE (at most $MAX_DOWNLOAD_BYTES bytes)"
	# The link is never printed: errors are reported by exit code and HTTP
	# status only, never with curl's own messages (which may quote it). The
	# link goes through a config file on stdin, not the command line.
	# --proto and --proto-redir: HTTPS only, for the link and for every
	# redirect it leads to.
	escaped="$(printf '%s' "$BACKUP_URL" | sed 's/[\\"]/\\&/g')"
	rc=0
	code="$(printf 'url = "%s"\n' "$escaped" |
		curl --config - --silent --location --proto =https --proto-redir =https \
			--max-filesize "$MAX_DOWNLOAD_BYTES" --retry 3 --connect-timeout 20 \
			--output "$part" --write-out '%{http_code}' 2>/dev/null)" || rc=$?
	if [ "$rc" -ne 0 ] || [ "$code" != 200 ]; then
		rm -f "$part"
		case "$rc" in
		1) die "download refused: the link redirected to a protocol other than https (curl exit code 1)" ;;
		63) die "download refused: the backup is larger than MAX_DOWNLOAD_BYTES ($MAX_DOWNLOAD_BYTES bytes; curl exit code 63)" ;;
		esac
		die "download failed (curl exit code $rc, HTTP status ${code:-none}); a 403 means the link expired or is not valid"
	fi
	size="$(wc -c <"$part" | tr -d ' ')"
	if [ "$size" -gt "$MAX_DOWNLOAD_BYTES" ]; then
		rm -f "$part"
		die "download refused: the backup is larger than MAX_DOWNLOAD_BYTES ($MAX_DOWNLOAD_BYTES bytes)"
	fi
	[ "$size" -gt 0 ] || die "the download is empty"
	mv "$part" "$BACKUP_FILE"
	log "downloaded $size bytes"
}

# temp_cli ARGS...: redis-cli against the temporary server.
temp_cli() { redis-cli -h 127.0.0.1 -p "$TEMP_PORT" "$@"; }

# target_cli ARGS...: redis-cli against the target; the password goes
# through the environment, never the command line.
target_cli() {
	if [ -n "${TARGET_USERNAME:-}" ]; then
		REDISCLI_AUTH="${TARGET_PASSWORD:-}" redis-cli -h "$TARGET_HOST" -p "$TARGET_PORT" --user "$TARGET_USERNAME" "$@"
	elif [ -n "${TARGET_PASSWORD:-}" ]; then
		REDISCLI_AUTH="$TARGET_PASSWORD" redis-cli -h "$TARGET_HOST" -p "$TARGET_PORT" "$@"
	else
		redis-cli -h "$TARGET_HOST" -p "$TARGET_PORT" "$@"
	fi
}

# stop_temp_server stops our temporary server by its pid (SIGTERM, which
# saves nothing with --save ""), never by a command sent to the port.
stop_temp_server() {
	if [ -n "$temp_pid" ]; then
		kill "$temp_pid" 2>/dev/null || true
		wait "$temp_pid" 2>/dev/null || true
		temp_pid=""
	fi
}

start_temp_server() {
	dir="$(cd "$(dirname "$BACKUP_FILE")" && pwd)"
	# Something else on the port would answer in place of the backup.
	if temp_cli ping >/dev/null 2>&1; then
		die "port $TEMP_PORT is already in use: set TEMP_PORT to a free port"
	fi
	log "starting a temporary redis-server on 127.0.0.1:$TEMP_PORT"
	redis-server --bind 127.0.0.1 --port "$TEMP_PORT" --protected-mode yes \
		--dir "$dir" --dbfilename "$(basename "$BACKUP_FILE")" \
		--save "" --appendonly no --daemonize no \
		--logfile "$work/temp-redis.log" &
	temp_pid=$!
	waited=0
	while :; do
		if ! kill -0 "$temp_pid" 2>/dev/null; then
			temp_pid=""
			log "the temporary redis-server exited; its log ends with:"
			tail -n 20 "$work/temp-redis.log" >&2 || true
			die "could not load the backup (port $TEMP_PORT in use, or a backup newer than this redis-server?)"
		fi
		reply="$(temp_cli ping 2>/dev/null || true)"
		if [ "$reply" = PONG ]; then
			pid="$(temp_cli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')"
			[ "$pid" = "$temp_pid" ] || die "another redis-server (pid ${pid:-unknown}) answers on port $TEMP_PORT: set TEMP_PORT to a free port"
			break
		fi
		[ "$waited" -lt "$STARTUP_TIMEOUT" ] || die "the temporary redis-server did not finish loading within ${STARTUP_TIMEOUT}s"
		sleep 1
		waited=$((waited + 1))
	done
	log "temporary redis-server is up (pid $temp_pid)"
}

# migrate_db DB: copy every key of database DB to the same database of the
# target; prints the number of keys copied.
migrate_db() {
	db="$1"
	expected="$(temp_cli -n "$db" dbsize | tr -d '\r')"
	# --no-raw prints each key double-quoted with escapes, one per line: the
	# form redis-cli reads back as an argument, so any key (spaces, newlines,
	# binary) survives. SCAN may return a key twice: sort -u.
	temp_cli -n "$db" --no-raw --scan | LC_ALL=C sort -u >"$work/keys.$db"
	found="$(wc -l <"$work/keys.$db" | tr -d ' ')"
	if ! head -n 1 "$work/keys.$db" | grep -q '^"'; then
		[ "$found" -eq 0 ] || die "redis-cli did not quote the key names (a redis-cli older than 7.0?)"
	fi
	[ "$found" -le "$expected" ] || die "database $db: SCAN listed $found keys but DBSIZE is $expected"
	[ "$found" -gt 0 ] || {
		echo 0
		return 0
	}
	MIGRATE_PREFIX="MIGRATE $(quote "$TARGET_HOST") $TARGET_PORT \"\" $db $MIGRATE_TIMEOUT_MS COPY REPLACE$auth KEYS" \
		awk -v size="$BATCH_SIZE" '
			{ keys = keys " " $0; n++ }
			n == size { print ENVIRON["MIGRATE_PREFIX"] keys; keys = ""; n = 0 }
			END { if (n > 0) print ENVIRON["MIGRATE_PREFIX"] keys }
		' "$work/keys.$db" >"$work/migrate.$db"
	batches="$(wc -l <"$work/migrate.$db" | tr -d ' ')"
	# One command per line on stdin: the password stays off the command line.
	temp_cli -n "$db" <"$work/migrate.$db" >"$work/replies.$db" 2>&1 || die "redis-cli failed while copying database $db"
	ok="$(grep -c '^OK$' "$work/replies.$db" || true)"
	nokey="$(grep -c '^NOKEY$' "$work/replies.$db" || true)"
	if grep -v -e '^OK$' -e '^NOKEY$' -e '^$' "$work/replies.$db" >"$work/errors.$db" || [ $((ok + nokey)) -ne "$batches" ]; then
		log "MIGRATE failed for database $db:"
		sort -u "$work/errors.$db" | head -n 5 >&2
		die "copying database $db to $TARGET_HOST:$TARGET_PORT failed ($ok of $batches batches succeeded)"
	fi
	[ "$nokey" -eq 0 ] || log "database $db: $nokey batches found no keys (expired meanwhile)"
	log "database $db: copied $found keys in $batches batches"
	echo "$found"
}

restore() {
	[ -n "${TARGET_HOST:-}" ] || die "TARGET_HOST is not set"
	[ -z "${TARGET_USERNAME:-}" ] || [ -n "${TARGET_PASSWORD:-}" ] || die "TARGET_USERNAME needs TARGET_PASSWORD"
	[ -s "$BACKUP_FILE" ] || die "BACKUP_FILE $BACKUP_FILE does not exist or is empty"
	for tool in redis-server redis-cli redis-check-rdb; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
	done

	log "checking $BACKUP_FILE with redis-check-rdb"
	if ! redis-check-rdb "$BACKUP_FILE" >"$work/check.log" 2>&1; then
		tail -n 20 "$work/check.log" >&2 || true
		die "redis-check-rdb rejected the backup"
	fi
	log "redis-check-rdb: the backup is a valid RDB file"

	log "checking the target $TARGET_HOST:$TARGET_PORT"
	reply="$(target_cli ping 2>&1 || true)"
	[ "$reply" = PONG ] || die "the target $TARGET_HOST:$TARGET_PORT does not answer PING: $reply"

	auth=""
	if [ -n "${TARGET_USERNAME:-}" ]; then
		auth=" AUTH2 $(quote "$TARGET_USERNAME") $(quote "$TARGET_PASSWORD")"
	elif [ -n "${TARGET_PASSWORD:-}" ]; then
		auth=" AUTH $(quote "$TARGET_PASSWORD")"
	fi

	start_temp_server
	dbs="$(temp_cli info keyspace | tr -d '\r' | sed -n 's/^db\([0-9][0-9]*\):keys=.*/\1/p')"
	total=0
	ndb=0
	for db in $dbs; do
		n="$(migrate_db "$db")"
		total=$((total + n))
		ndb=$((ndb + 1))
	done

	stop_temp_server
	log "restored $total keys from $ndb databases into $TARGET_HOST:$TARGET_PORT"
}

work="$(mktemp -d "$TMPDIR/restore.XXXXXX")"
case "$mode" in
download) download ;;
restore) restore ;;
all)
	[ -e "$BACKUP_FILE" ] || download
	restore
	;;
esac
log "done"
