#!/usr/bin/env bash
# Development certificates for Gatehouse: a private CA, a server certificate and
# client certificates, made with the openssl command line from the templates in
# certs/*.cnf.in. Run with --help for usage; see certs/README.md.
set -euo pipefail

PROG=${0##*/}
# The templates live in <repo>/certs, next to this script's own directory
# (followed through symlinks), whatever the current directory is.
script_dir() {
    local src=$1 dir link
    while :; do
        case $src in */*) dir=${src%/*} ;; *) dir=. ;; esac
        [[ -L $src ]] || break
        link=$(readlink -- "$src") || break
        case $link in /*) src=$link ;; *) src=${dir:-/}/$link ;; esac
    done
    cd -- "${dir:-/}" && pwd -P
}
SCRIPT_DIR=$(script_dir "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
TEMPLATE_DIR=$REPO_ROOT/certs

ORG='Gatehouse (development)'
CA_CN='Gatehouse Development CA'
CA_DAYS=3650
DEFAULT_HOSTS='localhost,127.0.0.1,::1'

usage() {
    cat <<EOF
Usage: $PROG [options]

Create a private development CA, a server certificate and client certificates
for Gatehouse with openssl, from the templates in certs/*.cnf.in.

Options:
  --out DIR       output directory (default: <repo>/certs/dev)
  --hosts LIST    comma-separated host names and IP addresses for the server
                  certificate's subjectAltName; the first one is also its CN
                  (default: $DEFAULT_HOSTS)
  --rsa           RSA 3072 keys instead of ECDSA P-256
  --days N        validity of the server and client certificates in days,
                  1-36500 (default: 825; a new CA always gets $CA_DAYS)
  --client NAME   also issue client-NAME.crt/.key with CN=NAME and
                  extendedKeyUsage clientAuth; repeatable;
                  NAME is 1-64 characters of A-Z a-z 0-9 . _ @ -
  --new-ca        replace the CA in DIR (default: reuse an existing
                  ca.crt/ca.key to sign, or create one if there is none)
  --no-server     do not issue server.crt/server.key (needs --client)
  --revoke NAME   revoke client-NAME.crt (signed by the CA in DIR) and write
                  crl.pem, the CA's revocation list for the server's --crl;
                  repeatable; a run with --revoke or --crl issues no server
                  certificate unless --client is given too
  --crl           write crl.pem again (a CRL is valid for --crl-days; renew it
                  before then, and send the server SIGHUP)
  --crl-days N    validity of crl.pem in days, 1-3650 (default: 30)
  --quiet         print nothing but warnings and errors
  -h, --help      show this help and exit

Files in DIR: ca.crt ca.key server.crt server.key client-NAME.crt client-NAME.key
and, once something was revoked, crl.pem and ca-db/ (the CA's revocation record).
Keys are written with mode 0600, certificates with 0644. Every new certificate
is checked with 'openssl verify -CAfile ca.crt' before it is installed.
Environment: OPENSSL=/path/to/openssl selects the openssl binary.
EOF
}

# One-line messages. User input is shown with unprintable characters replaced.
shown() { local s=${1//[^[:print:]]/?}; printf "'%s'" "$s"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: error: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
say() { ((QUIET)) || printf '%s\n' "$*"; }

# ---------------------------------------------------------------- arguments

OUT=
HOSTS=$DEFAULT_HOSTS
RSA=0
DAYS=825
NEW_CA=0
NO_SERVER=0
QUIET=0
CLIENTS=()
REVOKE=()
MAKE_CRL=0
CRL_DAYS=30

while (($#)); do
    opt=$1
    case $opt in
        --out | --hosts | --days | --client | --revoke | --crl-days)
            if (($# < 2)) || [[ $2 == --* ]]; then
                usage_error "missing value for $opt"
            fi
            val=$2
            shift 2
            ;;
        --out=* | --hosts=* | --days=* | --client=* | --revoke=* | --crl-days=*)
            val=${opt#*=}
            opt=${opt%%=*}
            shift
            ;;
        --rsa=* | --new-ca=* | --no-server=* | --crl=* | --quiet=* | --help=*)
            usage_error "option ${opt%%=*} takes no value"
            ;;
        --rsa) RSA=1; shift; continue ;;
        --new-ca) NEW_CA=1; shift; continue ;;
        --no-server) NO_SERVER=1; shift; continue ;;
        --crl) MAKE_CRL=1; shift; continue ;;
        --quiet | -q) QUIET=1; shift; continue ;;
        --help | -h) usage; exit 0 ;;
        -*) usage_error "unknown option $(shown "$opt")" ;;
        *) usage_error "unexpected argument $(shown "$opt")" ;;
    esac
    [[ -n $val ]] || usage_error "empty value for $opt"
    case $opt in
        --out) OUT=$val ;;
        --hosts) HOSTS=$val ;;
        --days) DAYS=$val ;;
        --client) CLIENTS+=("$val") ;;
        --revoke) REVOKE+=("$val") ;;
        --crl-days) CRL_DAYS=$val ;;
    esac
done

if ! [[ $DAYS =~ ^[0-9]{1,6}$ ]] || ((10#$DAYS < 1 || 10#$DAYS > 36500)); then
    usage_error "invalid --days $(shown "$DAYS"): expected a whole number of days from 1 to 36500"
fi
DAYS=$((10#$DAYS))

if ! [[ $CRL_DAYS =~ ^[0-9]{1,5}$ ]] || ((10#$CRL_DAYS < 1 || 10#$CRL_DAYS > 3650)); then
    usage_error "invalid --crl-days $(shown "$CRL_DAYS"): expected a whole number of days from 1 to 3650"
fi
CRL_DAYS=$((10#$CRL_DAYS))

client_re='^[A-Za-z0-9._@-]{1,64}$'
declare -A seen_client=()
unique_clients=()
for name in ${CLIENTS[@]+"${CLIENTS[@]}"}; do
    [[ $name =~ $client_re ]] ||
        usage_error "invalid client name $(shown "$name"): use 1-64 characters of A-Z a-z 0-9 . _ @ -"
    if [[ -z ${seen_client[$name]+x} ]]; then
        seen_client[$name]=1
        unique_clients+=("$name")
    fi
done
CLIENTS=(${unique_clients[@]+"${unique_clients[@]}"})

declare -A seen_revoke=()
for name in ${REVOKE[@]+"${REVOKE[@]}"}; do
    [[ $name =~ $client_re ]] || usage_error "invalid --revoke name $(shown "$name"): use the NAME of a client-NAME.crt"
    [[ -z ${seen_client[$name]+x} ]] || usage_error "--client $name and --revoke $name in one run"
    seen_revoke[$name]=1
done
((${#REVOKE[@]})) && MAKE_CRL=1
# A revocation run issues only what it is asked to (no server certificate by default).
if ((MAKE_CRL)) && ((${#CLIENTS[@]} == 0)); then NO_SERVER=1; fi

if ((NO_SERVER)) && ((${#CLIENTS[@]} == 0)) && ((!MAKE_CRL)); then
    usage_error "--no-server without --client leaves nothing to issue"
fi

is_ipv4() {
    local re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$' i
    [[ $1 =~ $re ]] || return 1
    for i in 1 2 3 4; do ((10#${BASH_REMATCH[i]} <= 255)) || return 1; done
}

is_ipv6() {
    local a=$1 g n=0
    [[ $a == *:* && $a =~ ^[0-9A-Fa-f:.]+$ && $a != *:::* ]] || return 1
    local after=${a#*::}
    [[ $a == *::* && $after == *::* ]] && return 1 # at most one "::"
    if [[ $a == *.* ]]; then                       # embedded IPv4 tail
        is_ipv4 "${a##*:}" || return 1
        a=${a%:*}:0:0
    fi
    [[ $a == :* && $a != ::* ]] && return 1
    [[ $a == *: && $a != *:: ]] && return 1
    local -a groups
    IFS=: read -ra groups <<<"$a"
    for g in ${groups[@]+"${groups[@]}"}; do
        [[ -z $g ]] && continue
        [[ $g =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
        n=$((n + 1))
    done
    if [[ $a == *::* ]]; then ((n <= 7)); else ((n == 8)); fi
}

label='[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
dns_re="^(\\*\\.)?$label(\\.$label)*\$"
SAN=
SERVER_CN=
HOST_LIST=()
declare -A seen_host=()
IFS=, read -ra host_items <<<"$HOSTS,"
for h in ${host_items[@]+"${host_items[@]}"}; do
    h=${h#"${h%%[![:space:]]*}"} # trim surrounding blanks
    h=${h%"${h##*[![:space:]]}"}
    [[ -n $h ]] || usage_error "empty entry in --hosts $(shown "$HOSTS")"
    if is_ipv4 "$h" || is_ipv6 "$h"; then
        entry="IP:$h"
    elif [[ $h =~ $dns_re && ${#h} -le 253 && ! $h =~ ^[0-9.]+$ ]]; then
        entry="DNS:$h"
    else
        usage_error "invalid host $(shown "$h") in --hosts: expected a DNS name or an IPv4/IPv6 address"
    fi
    [[ -n ${seen_host[$entry]+x} ]] && continue
    seen_host[$entry]=1
    HOST_LIST+=("$h")
    SAN+=${SAN:+, }$entry
    [[ -n $SERVER_CN ]] || SERVER_CN=$h
done
((${#HOST_LIST[@]})) || usage_error "--hosts is empty"
if ((${#SERVER_CN} > 64)); then
    usage_error "first host $(shown "$SERVER_CN") is longer than 64 characters and cannot be the CN"
fi

# ---------------------------------------------------------------- environment

OPENSSL=${OPENSSL:-openssl}
command -v -- "$OPENSSL" >/dev/null 2>&1 ||
    die "openssl not found: $(shown "$OPENSSL") is not on PATH (install OpenSSL or set OPENSSL=/path/to/openssl)"

for t in ca server client crl; do
    [[ -r $TEMPLATE_DIR/$t.cnf.in ]] || die "template not found: $TEMPLATE_DIR/$t.cnf.in"
done

# Everything from here on is created with umask 077: keys and the output
# directory are private from the start; certificates are chmod'ed to 0644.
umask 077

OUT=${OUT:-$REPO_ROOT/certs/dev}
[[ ! -e $OUT || -d $OUT ]] || die "output path is not a directory: $OUT"
if ! err=$(mkdir -p -- "$OUT" 2>&1); then
    die "cannot create output directory $OUT: ${err##*: }"
fi
[[ -w $OUT && -x $OUT ]] || die "output directory is not writable: $OUT"
OUT=$(cd -- "$OUT" && pwd -P)

# New files are made in a private staging directory inside OUT, verified there,
# and only then moved over the old ones, so a failed run changes nothing.
STAGE=$(mktemp -d "$OUT/.gen-certs.XXXXXX" 2>/dev/null) || die "output directory is not writable: $OUT"
trap 'rm -rf -- "$STAGE"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# ossl DESCRIPTION ARGS...: run openssl, show its output only if it fails.
# Keys always go to -out files, so the log never holds key material.
ossl() {
    local what=$1
    shift
    if ! "$OPENSSL" "$@" </dev/null >"$STAGE/openssl.log" 2>&1; then
        printf '%s: error: %s failed (openssl %s):\n' "$PROG" "$what" "$1" >&2
        sed 's/^/    /' "$STAGE/openssl.log" >&2
        exit 1
    fi
}

genkey() {
    if ((RSA)); then
        ossl "generating an RSA 3072 key" genpkey -algorithm RSA \
            -pkeyopt rsa_keygen_bits:3072 -out "$1"
    else
        ossl "generating an ECDSA P-256 key" genpkey -algorithm EC \
            -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1"
    fi
    chmod 0600 -- "$1"
}

# A random, positive, non-zero 128-bit serial number as 0x<hex>.
serial() {
    local hex n
    hex=$("$OPENSSL" rand -hex 16 2>/dev/null) || hex=
    [[ $hex =~ ^[0-9a-f]{32}$ ]] || die "openssl rand failed to produce a serial number"
    n=$((0x${hex:0:1} & 7))
    ((n)) || n=1
    printf '0x%x%s' "$n" "${hex:1}"
}

# render TEMPLATE OUTPUT KEY=VALUE...: replace @KEY@ with VALUE.
render() {
    local tpl=$1 out=$2 text kv
    shift 2
    text=$(<"$tpl")
    for kv in "$@"; do
        text=${text//"@${kv%%=*}@"/"${kv#*=}"}
    done
    [[ ! $text =~ @[A-Z_]+@ ]] || die "template $tpl has an unknown placeholder ${BASH_REMATCH[0]}"
    printf '%s\n' "$text" >"$out"
}

# verify_leaf CERT PURPOSE [VERIFY-OPTIONS...]: openssl verify against the CA.
verify_leaf() {
    local crt=$1 purpose=$2 out
    shift 2
    if ! out=$("$OPENSSL" verify -CAfile "$CA_CRT" -x509_strict -purpose "$purpose" "$@" "$crt" </dev/null 2>&1); then
        out=${out//$'\n'/ }
        die "${crt##*/} does not verify against ca.crt ($purpose${1:+ $*}), nothing was written: ${out//"$STAGE/"/}"
    fi
}

# describe CERT: "ECDSA P-256, expires <date>" (public information only).
describe() {
    "$OPENSSL" x509 -in "$1" -noout -text -enddate 2>/dev/null | awk '
        /Public Key Algorithm:/ { alg = $NF }
        /Public-Key:/           { bits = $2; gsub(/[^0-9]/, "", bits) }
        /NIST CURVE:/           { curve = $NF }
        /^notAfter=/            { sub(/^notAfter=/, ""); end = $0 }
        END {
            if (alg == "rsaEncryption") key = "RSA " bits
            else if (alg == "id-ecPublicKey") key = "ECDSA " (curve != "" ? curve : bits " bit")
            else key = alg
            printf "%s, expires %s", key, end
        }'
}

fingerprint() {
    local fp
    fp=$("$OPENSSL" x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null) || return 0
    printf '%s' "${fp#*=}"
}

KEY_USAGE=digitalSignature
((RSA)) && KEY_USAGE='digitalSignature, keyEncipherment'

# ---------------------------------------------------------------- the CA

if ((NEW_CA)) || [[ ! -e $OUT/ca.crt && ! -e $OUT/ca.key ]]; then
    if [[ -e $OUT/ca.crt || -e $OUT/ca.key ]]; then CA_ACTION=replaced; else CA_ACTION=created; fi
    render "$TEMPLATE_DIR/ca.cnf.in" "$STAGE/ca.cnf" ORG="$ORG" CA_CN="$CA_CN"
    genkey "$STAGE/ca.key"
    sn=$(serial)
    ossl "creating the CA certificate" req -x509 -new -config "$STAGE/ca.cnf" \
        -key "$STAGE/ca.key" -sha256 -days "$CA_DAYS" -set_serial "$sn" -out "$STAGE/ca.crt"
    chmod 0644 -- "$STAGE/ca.crt"
    CA_CRT=$STAGE/ca.crt
    CA_KEY=$STAGE/ca.key
else
    CA_ACTION=kept
    CA_CRT=$OUT/ca.crt
    CA_KEY=$OUT/ca.key
    [[ -f $CA_CRT ]] || die "$CA_KEY exists but ca.crt does not; rerun with --new-ca to make a new CA"
    [[ -f $CA_KEY ]] || die "$CA_CRT exists but ca.key does not; rerun with --new-ca to make a new CA"
    crt_pub=$("$OPENSSL" x509 -in "$CA_CRT" -noout -pubkey </dev/null 2>/dev/null) ||
        die "cannot read the existing CA certificate $CA_CRT; rerun with --new-ca to replace it"
    key_pub=$("$OPENSSL" pkey -in "$CA_KEY" -passin pass: -pubout </dev/null 2>/dev/null) ||
        die "cannot read the existing CA key $CA_KEY (unreadable or encrypted); rerun with --new-ca to replace it"
    [[ $crt_pub == "$key_pub" ]] ||
        die "the existing $CA_KEY does not match ca.crt; rerun with --new-ca to replace both"
    "$OPENSSL" x509 -in "$CA_CRT" -noout -checkend 0 >/dev/null 2>&1 ||
        die "the existing CA certificate $CA_CRT has expired; rerun with --new-ca to replace it"
fi
if ! "$OPENSSL" x509 -in "$CA_CRT" -noout -checkend $((DAYS * 86400)) >/dev/null 2>&1; then
    warn "the CA expires before the new certificates (--days $DAYS); they stop verifying when it does"
fi

# ---------------------------------------------------------------- leaves

# issue BASENAME TEMPLATE EXTENSIONS CN: key, request and certificate in $STAGE.
issue() {
    local base=$1 tpl=$2 ext=$3 cn=$4 sn
    render "$TEMPLATE_DIR/$tpl" "$STAGE/$base.cnf" \
        ORG="$ORG" CN="$cn" KEY_USAGE="$KEY_USAGE" SAN="$SAN"
    genkey "$STAGE/$base.key"
    ossl "creating the request for $base.crt" req -new -config "$STAGE/$base.cnf" \
        -key "$STAGE/$base.key" -out "$STAGE/$base.csr"
    sn=$(serial)
    ossl "signing $base.crt" x509 -req -in "$STAGE/$base.csr" -CA "$CA_CRT" -CAkey "$CA_KEY" \
        -passin pass: -set_serial "$sn" -days "$DAYS" -sha256 \
        -extfile "$STAGE/$base.cnf" -extensions "$ext" -out "$STAGE/$base.crt"
    chmod 0644 -- "$STAGE/$base.crt"
}

WRITTEN=()
if ((!NO_SERVER)); then
    issue server server.cnf.in v3_server "$SERVER_CN"
    verify_leaf "$STAGE/server.crt" sslserver
    for h in "${HOST_LIST[@]}"; do
        if is_ipv4 "$h" || is_ipv6 "$h"; then
            verify_leaf "$STAGE/server.crt" sslserver -verify_ip "$h"
        else
            verify_leaf "$STAGE/server.crt" sslserver -verify_hostname "${h/#\*./wildcard.}"
        fi
    done
    WRITTEN+=(server)
fi
for name in ${CLIENTS[@]+"${CLIENTS[@]}"}; do
    issue "client-$name" client.cnf.in v3_client "$name"
    verify_leaf "$STAGE/client-$name.crt" sslclient
    WRITTEN+=("client-$name")
done

# ---------------------------------------------------------------- revocation

# The CA's revocation record lives in OUT/ca-db (openssl ca's index and CRL number). It is
# copied into the staging directory, updated there, and moved back with the new crl.pem.
if ((MAKE_CRL)); then
    [[ $CA_ACTION == kept ]] || ((${#REVOKE[@]} == 0)) ||
        die "--revoke needs the CA that signed the certificate; this run makes a new CA"
    mkdir -p -- "$STAGE/ca-db"
    if [[ $CA_ACTION == kept && -f $OUT/ca-db/index.txt ]]; then
        cp -p -- "$OUT/ca-db/index.txt" "$STAGE/ca-db/index.txt"
        [[ ! -f $OUT/ca-db/crlnumber ]] || cp -p -- "$OUT/ca-db/crlnumber" "$STAGE/ca-db/crlnumber"
    else
        : >"$STAGE/ca-db/index.txt"
    fi
    [[ -f $STAGE/ca-db/crlnumber ]] || printf '01\n' >"$STAGE/ca-db/crlnumber"
    render "$TEMPLATE_DIR/crl.cnf.in" "$STAGE/crl.cnf" DATABASE="$STAGE/ca-db/index.txt" \
        CRLNUMBER="$STAGE/ca-db/crlnumber" CRL_DAYS="$CRL_DAYS"
    for name in ${REVOKE[@]+"${REVOKE[@]}"}; do
        crt=$OUT/client-$name.crt
        [[ -f $crt ]] || die "cannot revoke $(shown "$name"): $crt does not exist"
        if ! out=$("$OPENSSL" verify -CAfile "$CA_CRT" -no_check_time "$crt" </dev/null 2>&1); then
            die "cannot revoke $(shown "$name"): client-$name.crt was not signed by ca.crt: ${out//$'\n'/ }"
        fi
        sn=$("$OPENSSL" x509 -in "$crt" -noout -serial 2>/dev/null) || die "cannot read the serial of $crt"
        if grep -q "^R.*	${sn#serial=}	" "$STAGE/ca-db/index.txt"; then
            warn "client-$name.crt is already revoked"
            continue
        fi
        ossl "revoking client-$name.crt" ca -config "$STAGE/crl.cnf" -cert "$CA_CRT" -keyfile "$CA_KEY" \
            -passin pass: -revoke "$crt" -crl_reason keyCompromise
    done
    ossl "writing the CRL" ca -config "$STAGE/crl.cnf" -cert "$CA_CRT" -keyfile "$CA_KEY" -passin pass: \
        -gencrl -out "$STAGE/crl.pem"
    ossl "checking the CRL's signature" crl -in "$STAGE/crl.pem" -CAfile "$CA_CRT" -noout
    chmod 0644 -- "$STAGE/crl.pem"
    rm -f -- "$STAGE/ca-db/"*.old
fi

# ---------------------------------------------------------------- install

install_pair() {
    local base=$1 f
    for f in "$base.key" "$base.crt"; do
        [[ ! -d $OUT/$f ]] || die "$OUT/$f is a directory; move it out of the way"
    done
    mv -f -- "$STAGE/$base.key" "$OUT/$base.key"
    mv -f -- "$STAGE/$base.crt" "$OUT/$base.crt"
}

[[ $CA_ACTION == kept ]] || install_pair ca
if [[ $CA_ACTION == replaced && ( -e $OUT/crl.pem || -e $OUT/ca-db ) ]] && ((!MAKE_CRL)); then
    # The old CA's revocations mean nothing to the new one.
    rm -rf -- "$OUT/ca-db" "$OUT/crl.pem"
    warn "removed crl.pem and ca-db/ of the replaced CA; run with --crl to make a CRL for the new one"
fi
if ((MAKE_CRL)); then
    rm -rf -- "$OUT/ca-db"
    mv -f -- "$STAGE/ca-db" "$OUT/ca-db"
    mv -f -- "$STAGE/crl.pem" "$OUT/crl.pem"
fi
for base in ${WRITTEN[@]+"${WRITTEN[@]}"}; do install_pair "$base"; done
CA_CRT=$OUT/ca.crt

# Certificates in OUT that this run did not write may belong to an older CA.
declare -A written_now=()
for base in ${WRITTEN[@]+"${WRITTEN[@]}"}; do written_now[$base]=1; done
shopt -s nullglob
for crt in "$OUT"/server.crt "$OUT"/client-*.crt; do
    base=${crt##*/}
    base=${base%.crt}
    [[ -z ${written_now[$base]+x} && -f $crt ]] || continue
    if ! "$OPENSSL" verify -CAfile "$CA_CRT" "$crt" >/dev/null 2>&1; then
        warn "$base.crt (not reissued in this run) does not verify against the current ca.crt"
    fi
done
shopt -u nullglob

# ---------------------------------------------------------------- summary

if ((!QUIET)); then
    say "Certificates in $OUT:"
    say "  ca.crt, ca.key: $CA_ACTION; $(describe "$CA_CRT")"
    say "    SHA-256 fingerprint $(fingerprint "$CA_CRT")"
    for base in ${WRITTEN[@]+"${WRITTEN[@]}"}; do
        if [[ $base == server ]]; then
            say "  server.crt, server.key: new, CN=$SERVER_CN; $(describe "$OUT/server.crt")"
            say "    subjectAltName: $SAN"
        else
            say "  $base.crt, $base.key: new, CN=${base#client-}, clientAuth; $(describe "$OUT/$base.crt")"
        fi
    done
    for name in ${REVOKE[@]+"${REVOKE[@]}"}; do
        say "  client-$name.crt: revoked"
    done
    if ((MAKE_CRL)); then
        revoked=$(grep -c '^R' "$OUT/ca-db/index.txt" || true)
        say "  crl.pem: $revoked revoked; next update $("$OPENSSL" crl -in "$OUT/crl.pem" -noout -nextupdate | cut -d= -f2)"
        say "    give it to the server with --crl; renew it with --crl before then and send SIGHUP"
    fi
    say "Keys are mode 0600, certificates 0644; all new certificates verified against ca.crt."
fi
