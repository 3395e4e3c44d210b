#!/bin/sh
# hostmesh agent installer: adds this host to a mesh, or removes it (--uninstall).
#
# The server serves this script at GET /install.sh with its address, CA fingerprint and TLS key pin
# filled in below; `hostmesh token create` prints the command that runs it:
#
#   curl -fsSL -k --pinnedpubkey 'sha256//…' https://SERVER:7443/install.sh | sudo sh -s -- --token T
#
# Every download goes through the same pinned connection, and the agent is checked against its
# SHA-256 before anything is installed. Running it again upgrades the agent and keeps the host's
# identity and config. POSIX sh; `sh install.sh --help` lists the options.
set -eu

# Filled in by the server that serves this script (GET /install.sh); empty in the repository copy.
HM_SERVER=''
HM_CA_FINGERPRINT=''
HM_PIN=''

PROG=hostmesh-install
UNIT=hostmesh-agent.service
USER_NAME=hostmesh

usage() {
	cat <<'EOF'
Usage: install.sh [options]     (as root; normally run through the command `hostmesh token create` prints)

  --token TOKEN              join token (needed for a first install)
  --name NAME                this host's name in the mesh (default: the hostname)
  --address ADDR             address other agents dial (default: the agent picks the primary IPv4)
  --service NAME:PORT[:PROTO]  a local service to register (PROTO http or tcp); repeatable
  --upstream SERVICE:PORT    a service this host calls, on 127.0.0.1:PORT; repeatable
  --inbound HOST:PORT        the inbound mTLS listener (default ADDR:15443)
  --admin HOST:PORT          /readyz, /metrics (default 127.0.0.1:15090)
  --log-level LEVEL          the agent's log level (default info)
  --bundle                   install the single JS file (needs Node.js 20+) instead of the executable
  --no-start                 install and enable, but do not start the agent
  --wait SECONDS             how long to wait for the agent to join (default 60)
  --dry-run                  say what would be done; change nothing
  --uninstall                remove the agent, its config and its state from this host
  --root DIR                 install under DIR instead of / (for tests: no user, no systemd needed)
  --server URL, --ca-fingerprint sha256:HEX, --pin sha256//BASE64
                             the server and its pins (filled in when the server serves this script)
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

# ---- arguments --------------------------------------------------------------------------------

TOKEN='' NAME='' ADDRESS='' INBOUND='' ADMIN='' LOG_LEVEL='' SERVICES='' UPSTREAMS='' ROOT=''
WAIT=60 DRY_RUN=0 NO_START=0 UNINSTALL=0 BUNDLE=0
NL='
'

while [ $# -gt 0 ]; do
	arg=$1
	shift
	case $arg in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		inline=1
		;;
	*)
		val=''
		inline=0
		;;
	esac
	case $arg in
	--token | --name | --address | --service | --upstream | --inbound | --admin | --log-level | --wait | --root | --server | --ca-fingerprint | --pin)
		if [ "$inline" -eq 0 ]; then
			[ $# -gt 0 ] || die "$arg needs a value (see --help)"
			val=$1
			shift
		fi
		;;
	--bundle | --no-start | --dry-run | --uninstall | --help | -h)
		[ "$inline" -eq 0 ] || die "$arg takes no value"
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
	case $arg in
	--token) TOKEN=$val ;;
	--name) NAME=$val ;;
	--address) ADDRESS=$val ;;
	--service) SERVICES="$SERVICES$val$NL" ;;
	--upstream) UPSTREAMS="$UPSTREAMS$val$NL" ;;
	--inbound) INBOUND=$val ;;
	--admin) ADMIN=$val ;;
	--log-level) LOG_LEVEL=$val ;;
	--wait) WAIT=$val ;;
	--root) ROOT=$val ;;
	--server) HM_SERVER=$val ;;
	--ca-fingerprint) HM_CA_FINGERPRINT=$val ;;
	--pin) HM_PIN=$val ;;
	--bundle) BUNDLE=1 ;;
	--no-start) NO_START=1 ;;
	--dry-run) DRY_RUN=1 ;;
	--uninstall) UNINSTALL=1 ;;
	--help | -h)
		usage
		exit 0
		;;
	esac
done

# ---- checks that change nothing -----------------------------------------------------------------

matches() { printf '%s' "$1" | grep -Eq "$2"; }
valid_port() { matches "$1" '^[0-9]{1,5}$' && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
valid_hostport() { matches "$1" '^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' && valid_port "${1##*:}"; }
NAME_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'

if [ -n "$ROOT" ]; then
	case $ROOT in /*) ;; *) die "--root needs an absolute path" ;; esac
	ROOT=${ROOT%/}
fi
ETC_DIR="$ROOT/etc/hostmesh"
CONFIG="$ETC_DIR/agent.yaml"
MARKER="$ETC_DIR/.installed"
STATE_DIR="$ROOT/var/lib/hostmesh"
BIN="$ROOT/usr/local/bin/hostmesh-agent"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT_FILE="$UNIT_DIR/$UNIT"
DROPIN_DIR="$UNIT_DIR/$UNIT.d"

check_platform() {
	[ "$(uname -s)" = Linux ] || die "hostmesh agents run on Linux; this is $(uname -s)"
	if [ -z "$ROOT" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
		die "run as root (pipe into sudo sh -s -- ...)"
	fi
	command -v systemctl >/dev/null 2>&1 || die "systemd's systemctl is not installed: the agent runs as a systemd service"
	if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
		die "systemd is not running on this host (no /run/systemd/system): the agent runs as a systemd service"
	fi
	case $(uname -m) in
	x86_64 | amd64) ARCH=x64 ;;
	aarch64 | arm64) ARCH=arm64 ;;
	*) die "unsupported architecture $(uname -m): the agent is built for x86_64 and aarch64" ;;
	esac
}

check_options() {
	[ -n "$HM_SERVER" ] || die "no server: fetch this script from your hostmesh server (GET /install.sh), or give --server"
	matches "$HM_SERVER" '^https://[][A-Za-z0-9.:-]+$' || die "--server must be https://HOST:PORT, not \"$HM_SERVER\""
	matches "$HM_CA_FINGERPRINT" '^sha256:[0-9a-f]{64}$' || die "--ca-fingerprint must be sha256:<64 hex> (hostmesh status prints it), not \"$HM_CA_FINGERPRINT\""
	matches "$HM_PIN" '^sha256//[A-Za-z0-9+/]{43}=$' || die "--pin must be sha256//<base64> (the install command carries it), not \"$HM_PIN\""
	[ -z "$TOKEN" ] || matches "$TOKEN" '^[A-Za-z0-9_.-]{8,256}$' || die "--token does not look like a join token"
	[ -z "$NAME" ] || matches "$NAME" "$NAME_RE" || die "--name must be a DNS label (lower-case letters, digits, '-'), not \"$NAME\""
	[ -z "$ADDRESS" ] || matches "$ADDRESS" '^[A-Za-z0-9.:-]+$' || die "--address must be an IP address or host name, not \"$ADDRESS\""
	[ -z "$INBOUND" ] || valid_hostport "$INBOUND" || die "--inbound must be HOST:PORT, not \"$INBOUND\""
	[ -z "$ADMIN" ] || valid_hostport "$ADMIN" || die "--admin must be HOST:PORT, not \"$ADMIN\""
	[ -z "$LOG_LEVEL" ] || matches "$LOG_LEVEL" '^(fatal|error|warn|info|debug|trace)$' || die "--log-level must be one of fatal error warn info debug trace"
	matches "$WAIT" '^[0-9]{1,4}$' || die "--wait must be a number of seconds"
	printf '%s' "$SERVICES" | while IFS= read -r s; do
		matches "$s" '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?:[0-9]{1,5}(:(http|tcp))?$' || die "--service must be NAME:PORT[:http|tcp], not \"$s\""
		p=${s#*:}
		valid_port "${p%%:*}" || die "--service $s: the port must be 1-65535"
	done
	printf '%s' "$UPSTREAMS" | while IFS= read -r u; do
		matches "$u" '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?:[0-9]{1,5}$' || die "--upstream must be SERVICE:LOCALPORT, not \"$u\""
		valid_port "${u##*:}" || die "--upstream $u: the port must be 1-65535"
	done
}

# ---- doing things (or saying what would be done) -------------------------------------------------

run() {
	if [ "$DRY_RUN" -eq 1 ]; then
		say "would run: $*"
	else
		"$@"
	fi
}

systemctl_() {
	if [ -n "$ROOT" ]; then
		# Offline: only enable/disable make sense under a root that no systemd manages.
		case $1 in enable | disable) run systemctl --root="$ROOT" --quiet "$@" ;; *) ;; esac
	else
		run systemctl --quiet "$@"
	fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		openssl dgst -sha256 -r "$1" | cut -d' ' -f1
	fi
}

# fetch NAME OUT: one file from the server over the pinned connection; dies with the server's reason.
fetch() {
	code=0
	status=$(curl -sS -k --pinnedpubkey "$HM_PIN" --proto '=https' --connect-timeout 10 --retry 2 \
		-o "$2" -w '%{http_code}' "$HM_SERVER/install/$1" 2>"$TMP/curl.err") || code=$?
	case $code in
	0) ;;
	90) die "$HM_SERVER does not present the pinned key ($HM_PIN): it is not the server the install command came from; nothing was installed" ;;
	*) die "cannot download $1 from $HM_SERVER: $(cat "$TMP/curl.err")" ;;
	esac
	[ "$status" = 200 ] && return 0
	reason=$(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$2")
	[ "$status" = 404 ] && return 4
	die "the server answered $status for $1: ${reason:-no reason given}"
}

# get_verified NAME: download NAME and NAME.sha256, refuse on a mismatch. Returns 4 if the server has no NAME.
get_verified() {
	rc=0
	fetch "$1" "$TMP/$1" || rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	rc=0
	fetch "$1.sha256" "$TMP/$1.sha256" || rc=$?
	[ "$rc" -eq 0 ] || die "the server has $1 but no $1.sha256: run npm run build:agent on the server again"
	want=$(cut -d' ' -f1 <"$TMP/$1.sha256")
	matches "$want" '^[0-9a-f]{64}$' || die "$1.sha256 from the server is not a SHA-256 checksum"
	got=$(sha256_of "$TMP/$1")
	[ "$got" = "$want" ] || die "$1 does not match its SHA-256 (expected $want, got $got): refusing it; nothing was installed"
	say "downloaded $1 ($got, checked)"
}

node_ok() {
	command -v node >/dev/null 2>&1 || return 1
	major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || return 1
	[ "$major" -ge 20 ]
}

download_agent() {
	KIND=sea
	if [ "$BUNDLE" -eq 0 ]; then
		rc=0
		get_verified "hostmesh-agent-linux-$ARCH" || rc=$?
		if [ "$rc" -eq 0 ]; then
			AGENT_FILE="$TMP/hostmesh-agent-linux-$ARCH"
			return 0
		fi
		node_ok || die "the server has no agent executable for linux-$ARCH, and this host has no Node.js 20+ for the JS bundle: run npm run build:agent on the server (on linux-$ARCH), or install Node.js 20+ here"
		say "the server has no executable for linux-$ARCH; using the JS bundle with $(command -v node)"
	else
		node_ok || die "--bundle needs Node.js 20 or later on this host"
	fi
	KIND=bundle
	rc=0
	get_verified hostmesh-agent.cjs || rc=$?
	[ "$rc" -eq 0 ] || die "the server has no agent build (hostmesh-agent.cjs): run npm run build:agent where the server runs"
	AGENT_FILE="$TMP/hostmesh-agent.cjs"
}

default_name() {
	n=$(hostname 2>/dev/null || cat /etc/hostname)
	n=$(printf '%s' "${n%%.*}" | tr 'A-Z_' 'a-z-' | tr -cd 'a-z0-9-' | sed 's/^-*//; s/-*$//' | cut -c1-63)
	printf '%s' "${n:-host}"
}

write_config() {
	{
		echo "# Written by the hostmesh installer. Check it with: hostmesh-agent check --config $CONFIG"
		echo "server: $HM_SERVER"
		echo "caFingerprint: $HM_CA_FINGERPRINT"
		echo "# Needed only until this host has joined; then it may be removed."
		echo "token: $TOKEN"
		echo "name: $NAME"
		[ -z "$ADDRESS" ] || echo "address: $ADDRESS"
		echo "stateDir: $STATE_DIR"
		[ -z "$INBOUND" ] || echo "inbound: $INBOUND"
		[ -z "$ADMIN" ] || echo "admin: $ADMIN"
		[ -z "$LOG_LEVEL" ] || echo "logLevel: $LOG_LEVEL"
		if [ -n "$SERVICES" ]; then
			echo "services:"
			printf '%s' "$SERVICES" | while IFS=: read -r sname sport sproto; do
				echo "  - name: $sname"
				echo "    port: $sport"
				[ -z "$sproto" ] || echo "    protocol: $sproto"
			done
		fi
		if [ -n "$UPSTREAMS" ]; then
			echo "upstreams:"
			printf '%s' "$UPSTREAMS" | while IFS=: read -r uname uport; do
				echo "  - service: $uname"
				echo "    localPort: $uport"
			done
		fi
	} >"$1"
}

# The unit as the server ships it, with ExecStart= for the bundle when that is what is installed.
write_unit() {
	if [ "$KIND" = bundle ]; then
		node_bin=$(command -v node)
		sed "s|^ExecStart=/usr/local/bin/hostmesh-agent |ExecStart=$node_bin /usr/local/bin/hostmesh-agent |" "$TMP/$UNIT" >"$1"
	else
		cp "$TMP/$UNIT" "$1"
	fi
}

# install_file SRC DEST MODE: replaces DEST only if it differs; says which. Atomic (rename in place).
CHANGED=0
install_file() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		say "$2 is up to date"
		return 0
	fi
	CHANGED=1
	if [ "$DRY_RUN" -eq 1 ]; then
		say "would install $2 (mode $3)"
		return 0
	fi
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.new"
	chmod "$3" "$2.new"
	mv -f "$2.new" "$2"
	say "installed $2"
}

ensure_user() {
	if [ -n "$ROOT" ]; then
		say "--root: not creating the $USER_NAME user or changing owners"
		return 0
	fi
	if id "$USER_NAME" >/dev/null 2>&1; then
		return 0
	fi
	nologin=$(command -v nologin 2>/dev/null || echo /usr/sbin/nologin)
	run useradd --system --user-group --no-create-home --home-dir /var/lib/hostmesh --shell "$nologin" "$USER_NAME"
	CREATED_USER=yes
}

own() {
	[ -n "$ROOT" ] || run chown "$@"
}

wait_joined() {
	admin=${ADMIN:-$(sed -n 's/^admin: *//p' "$CONFIG")}
	admin=${admin:-127.0.0.1:15090}
	say "waiting up to ${WAIT}s for the agent to join (http://$admin/readyz)"
	i=0
	reason=''
	while [ "$i" -lt "$WAIT" ]; do
		if reason=$(curl -fsS --max-time 2 "http://$admin/readyz" 2>/dev/null); then
			say "the agent is ready: $NAME has joined the mesh. Check it any time with: hostmesh-agent check"
			return 0
		fi
		reason=$(curl -sS --max-time 2 "http://$admin/readyz" 2>/dev/null || true)
		if [ "$(systemctl is-active "$UNIT" 2>/dev/null || true)" = failed ]; then
			break
		fi
		sleep 1
		i=$((i + 1))
	done
	say "the agent has not become ready${reason:+: $reason}"
	journalctl -u "$UNIT" -n 20 --no-pager 2>/dev/null || true
	die "see above, or run: hostmesh-agent check --config $CONFIG; journalctl -u $UNIT"
}

# ---- uninstall --------------------------------------------------------------------------------

remove() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		run rm -rf "$1"
		[ "$DRY_RUN" -eq 1 ] || say "removed $1"
	fi
}

uninstall() {
	host=$(sed -n 's/^name: *//p' "$CONFIG" 2>/dev/null || true)
	created_user=$(sed -n 's/^created_user=//p' "$MARKER" 2>/dev/null || true)
	if [ -f "$UNIT_FILE" ]; then
		[ -n "$ROOT" ] || systemctl_ stop "$UNIT" || true
		systemctl_ disable "$UNIT" || true
	fi
	remove "$DROPIN_DIR"
	remove "$UNIT_FILE"
	[ -n "$ROOT" ] || systemctl_ daemon-reload || true
	remove "$BIN"
	remove "$ETC_DIR"
	remove "$STATE_DIR"
	if [ -z "$ROOT" ] && [ "$created_user" = yes ] && id "$USER_NAME" >/dev/null 2>&1; then
		run userdel "$USER_NAME" || say "could not remove the $USER_NAME user; remove it with userdel $USER_NAME"
	fi
	if [ -n "$ROOT" ] && [ "$DRY_RUN" -eq 0 ]; then
		# Under a test root, leave it as empty as it was found.
		for d in "$ROOT/usr/local/bin" "$ROOT/usr/local" "$ROOT/usr" "$UNIT_DIR" "$ROOT/etc/systemd" "$ROOT/etc" "$ROOT/var/lib" "$ROOT/var"; do
			rmdir "$d" 2>/dev/null || true
		done
	fi
	if [ "$DRY_RUN" -eq 1 ]; then
		say "dry run: nothing was removed"
	else
		say "the agent, its config and its state are removed from this host."
	fi
	say "The server still lists this host and accepts its certificates until they expire; on the server run:  hostmesh delete host ${host:-<name>}"
}

# ---- install ----------------------------------------------------------------------------------

install_agent() {
	check_options
	FIRST=1
	[ ! -f "$CONFIG" ] || FIRST=0
	if [ "$FIRST" -eq 1 ]; then
		[ -n "$TOKEN" ] || die "--token is required for a first install (make one on the server: hostmesh token create)"
		[ -n "$NAME" ] || NAME=$(default_name)
		matches "$NAME" "$NAME_RE" || die "cannot make a host name from the hostname; give --name"
	else
		NAME=$(sed -n 's/^name: *//p' "$CONFIG")
		if [ -n "$TOKEN$SERVICES$UPSTREAMS$ADDRESS$INBOUND$ADMIN" ]; then
			say "keeping the existing $CONFIG (this host's identity and config); edit it to change services or addresses"
		fi
	fi

	download_agent
	fetch "$UNIT" "$TMP/$UNIT" || die "the server has no $UNIT to serve (its checkout lacks systemd/)"

	if [ "$FIRST" -eq 1 ]; then
		write_config "$TMP/agent.yaml"
	else
		cp "$CONFIG" "$TMP/agent.yaml"
	fi
	# Pre-flight with the agent just downloaded: config, server, pin, clock, ports.
	chmod 0755 "$AGENT_FILE"
	if [ "$KIND" = bundle ]; then set -- node "$AGENT_FILE"; else set -- "$AGENT_FILE"; fi
	say "pre-flight check of this host with the downloaded agent:"
	if ! "$@" check --pre --config "$TMP/agent.yaml"; then
		die "the pre-flight check failed (above); nothing was installed"
	fi

	ensure_user
	if [ "$DRY_RUN" -eq 0 ]; then
		mkdir -p "$ETC_DIR" "$STATE_DIR"
		chmod 0750 "$ETC_DIR"
		chmod 0700 "$STATE_DIR"
	fi
	own "root:$USER_NAME" "$ETC_DIR"
	own "$USER_NAME:$USER_NAME" "$STATE_DIR"
	install_file "$AGENT_FILE" "$BIN" 0755
	write_unit "$TMP/unit"
	install_file "$TMP/unit" "$UNIT_FILE" 0644
	inbound_port=$(sed -n 's/^inbound: *//p' "$TMP/agent.yaml")
	inbound_port=${inbound_port##*:}
	if [ -n "$inbound_port" ] && [ "$inbound_port" -lt 1024 ]; then
		printf '[Service]\n# The inbound port %s is below 1024.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n' "$inbound_port" >"$TMP/low-port.conf"
		install_file "$TMP/low-port.conf" "$DROPIN_DIR/10-low-port.conf" 0644
	fi
	if [ "$FIRST" -eq 1 ]; then
		install_file "$TMP/agent.yaml" "$CONFIG" 0640
		own "root:$USER_NAME" "$CONFIG"
		printf 'created_user=%s\n' "${CREATED_USER:-no}" >"$TMP/marker"
		install_file "$TMP/marker" "$MARKER" 0600
	fi

	[ -n "$ROOT" ] || systemctl_ daemon-reload
	systemctl_ enable "$UNIT"
	if [ "$NO_START" -eq 1 ] || [ -n "$ROOT" ]; then
		say "installed, not started (--no-start): start it with  systemctl start $UNIT"
	elif [ "$DRY_RUN" -eq 1 ]; then
		say "would start $UNIT and wait for it to join"
	else
		if [ "$CHANGED" -eq 1 ] && systemctl is-active --quiet "$UNIT"; then
			systemctl_ restart "$UNIT"
		else
			systemctl_ start "$UNIT"
		fi
		wait_joined
	fi
	if [ "$CHANGED" -eq 0 ]; then
		say "nothing to do: the agent is up to date"
	fi
}

check_platform
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hostmesh-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
if [ "$UNINSTALL" -eq 1 ]; then
	uninstall
else
	install_agent
fi
