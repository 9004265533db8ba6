#!/usr/bin/env bash
# A development identity provider for Gatehouse's JWT authentication: signing keys, the JWKS
# the server reads (--jwt-jwks), and signed access tokens for `gatehouse send --token-command`.
# Only bash and the openssl command line: no IdP, no Python packages. Run with --help.
set -euo pipefail

PROG=${0##*/}
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
REPO_ROOT=$(cd -- "$(script_dir "${BASH_SOURCE[0]}")/.." && pwd -P)

DIR=${GATEHOUSE_IDP_DIR:-$REPO_ROOT/certs/dev/idp}
ISSUER=gatehouse-dev-idp
AUDIENCE=gatehouse

usage() {
    cat <<EOF
Usage: $PROG COMMAND [options]

A development identity provider: it keeps signing keys in a directory, publishes
their public halves as a JWKS for the server, and mints signed access tokens.

Commands:
  init [--alg ES256|RS256|EdDSA] [--kid KID]
        make a signing key DIR/keys/KID.key (mode 0600; KID defaults to the
        algorithm and a random suffix), make it the current key, and rewrite
        DIR/jwks.json with the public half of every key in DIR
  mint [options]
        print a signed access token (a JWT) on standard output
  retire KID
        delete key KID and rewrite DIR/jwks.json without it (key rotation:
        init a new key, reload the server, retire the old key once no token
        signed by it is still valid, reload again)
  jwks  print DIR/jwks.json

Options of every command:
  --dir DIR        key directory (default: <repo>/certs/dev/idp, or
                   \$GATEHOUSE_IDP_DIR)

Options of mint:
  --sub USER       the user the token names (claim 'sub'; default: dev)
  --ttl SECONDS    lifetime: exp = now + SECONDS; negative for an expired
                   token (default: 300)
  --nbf SECONDS    add nbf = now + SECONDS
  --iss ISSUER     (default: $ISSUER)
  --aud AUDIENCE   repeatable: two or more make an array (default: $AUDIENCE)
  --claims JSON    more claims, as a JSON object: '{"scope":"send"}'
  --kid KID        sign with key KID (default: the current key)
  --no-kid         leave 'kid' out of the header
  --header JSON    use this header as is (tests: other typ, crit, alg, ...)
  --payload JSON   use this payload as is, ignoring the claim options

Server side, with the defaults:
  gatehouse-server --jwt-jwks certs/dev/idp/jwks.json \\
      --jwt-issuer $ISSUER --jwt-audience $AUDIENCE
Client side:
  GATEHOUSE_USER=dev gatehouse send --token-command '$PROG mint --sub dev' hello
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
hex_to_binary() { printf '%b' "$(sed 's/../\\x&/g')"; }
json_string() {
    # Refuses what would need escaping: the script writes JSON by hand.
    [[ $1 != *[\"\\]* && $1 != *[[:cntrl:]]* ]] || die "'$1': quotes, backslashes and control characters are not supported"
    printf '"%s"' "$1"
}
valid_kid() { [[ $1 =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "key id '$1' must be 1 to 64 of A-Z a-z 0-9 _ -"; }
alg_of() { cat "$DIR/keys/$1.alg" 2>/dev/null || die "no key '$1' in $DIR/keys"; }

# The JWK of key $1 (public members only).
public_jwk() {
    local kid=$1 key=$DIR/keys/$1.key alg
    alg=$(alg_of "$kid")
    case $alg in
    ES256)
        local der x y
        der=$(mktemp)
        openssl pkey -in "$key" -pubout -outform DER -out "$der"
        # SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
        x=$(tail -c 64 "$der" | head -c 32 | b64url)
        y=$(tail -c 32 "$der" | b64url)
        rm -f "$der"
        printf '{"kty":"EC","crv":"P-256","kid":"%s","use":"sig","alg":"ES256","x":"%s","y":"%s"}' "$kid" "$x" "$y"
        ;;
    RS256)
        local n
        openssl pkey -in "$key" -noout -text | grep -q 'publicExponent: 65537' || die "$key: exponent is not 65537"
        n=$(openssl pkey -in "$key" -pubout | openssl rsa -pubin -noout -modulus | sed 's/^Modulus=//' | hex_to_binary | b64url)
        printf '{"kty":"RSA","kid":"%s","use":"sig","alg":"RS256","e":"AQAB","n":"%s"}' "$kid" "$n"
        ;;
    EdDSA)
        local x
        x=$(openssl pkey -in "$key" -pubout -outform DER | tail -c 32 | b64url)
        printf '{"kty":"OKP","crv":"Ed25519","kid":"%s","use":"sig","alg":"EdDSA","x":"%s"}' "$kid" "$x"
        ;;
    *) die "$DIR/keys/$kid.alg: unknown algorithm '$alg'" ;;
    esac
}

write_jwks() {
    local first=1 file tmp
    tmp=$(mktemp "$DIR/.jwks.XXXXXX")
    {
        printf '{"keys":['
        for file in "$DIR"/keys/*.key; do
            [[ -e $file ]] || continue
            local kid=${file##*/}
            kid=${kid%.key}
            ((first)) || printf ','
            first=0
            printf '\n  '
            public_jwk "$kid"
        done
        printf '\n]}\n'
    } >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$DIR/jwks.json"
}

cmd_init() {
    local alg=ES256 kid=
    while [[ $# -gt 0 ]]; do
        case $1 in
        --alg) alg=${2:?--alg needs a value}; shift 2 ;;
        --kid) kid=${2:?--kid needs a value}; shift 2 ;;
        *) die "init: unknown option $1" ;;
        esac
    done
    case $alg in ES256 | RS256 | EdDSA) ;; *) die "--alg must be ES256, RS256 or EdDSA" ;; esac
    [[ -n $kid ]] || kid=$(tr 'A-Z' 'a-z' <<<"$alg")-$(openssl rand -hex 4)
    valid_kid "$kid"
    mkdir -p "$DIR/keys"
    chmod 700 "$DIR" "$DIR/keys"
    [[ ! -e $DIR/keys/$kid.key ]] || die "key '$kid' exists already"
    local spec
    case $alg in
    ES256) spec=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    RS256) spec=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
    EdDSA) spec=(-algorithm ED25519) ;;
    esac
    (umask 077 && openssl genpkey "${spec[@]}" -out "$DIR/keys/$kid.key" 2>/dev/null)
    chmod 600 "$DIR/keys/$kid.key"
    printf '%s\n' "$alg" >"$DIR/keys/$kid.alg"
    printf '%s\n' "$kid" >"$DIR/current"
    write_jwks
    echo "$PROG: key $kid ($alg) in $DIR/keys; JWKS $DIR/jwks.json" >&2
    echo "$kid"
}

cmd_retire() {
    local kid=${1:?retire needs a key id}
    valid_kid "$kid"
    [[ -e $DIR/keys/$kid.key ]] || die "no key '$kid' in $DIR/keys"
    rm -f "$DIR/keys/$kid.key" "$DIR/keys/$kid.alg"
    if [[ $(cat "$DIR/current" 2>/dev/null) == "$kid" ]]; then rm -f "$DIR/current"; fi
    write_jwks
    echo "$PROG: key $kid retired; JWKS $DIR/jwks.json" >&2
}

cmd_mint() {
    local sub=dev ttl=300 nbf= iss=$ISSUER claims= kid= no_kid=0 header= payload=
    local -a auds=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --sub) sub=${2?}; shift 2 ;;
        --ttl) ttl=${2?}; shift 2 ;;
        --nbf) nbf=${2?}; shift 2 ;;
        --iss) iss=${2?}; shift 2 ;;
        --aud) auds+=("${2?}"); shift 2 ;;
        --claims) claims=${2?}; shift 2 ;;
        --kid) kid=${2?}; shift 2 ;;
        --no-kid) no_kid=1; shift ;;
        --header) header=${2?}; shift 2 ;;
        --payload) payload=${2?}; shift 2 ;;
        *) die "mint: unknown option $1" ;;
        esac
    done
    [[ -n $kid ]] || kid=$(cat "$DIR/current" 2>/dev/null) || die "no current key in $DIR: run '$PROG init' first"
    valid_kid "$kid"
    local alg key=$DIR/keys/$kid.key
    alg=$(alg_of "$kid")
    [[ $ttl =~ ^-?[0-9]+$ ]] || die "--ttl must be a whole number of seconds"
    [[ -z $nbf || $nbf =~ ^-?[0-9]+$ ]] || die "--nbf must be a whole number of seconds"
    if [[ -z $header ]]; then
        header="{\"alg\":\"$alg\",\"typ\":\"at+jwt\""
        ((no_kid)) || header+=",\"kid\":\"$kid\""
        header+="}"
    fi
    if [[ -z $payload ]]; then
        local now aud
        now=$(date +%s)
        [[ ${#auds[@]} -gt 0 ]] || auds=("$AUDIENCE")
        if [[ ${#auds[@]} -eq 1 ]]; then
            aud=$(json_string "${auds[0]}")
        else
            aud="["
            for a in "${auds[@]}"; do aud+="$(json_string "$a"),"; done
            aud="${aud%,}]"
        fi
        payload="{\"iss\":$(json_string "$iss"),\"sub\":$(json_string "$sub"),\"aud\":$aud"
        payload+=",\"iat\":$now,\"exp\":$((now + ttl)),\"jti\":\"$(openssl rand -hex 8)\""
        [[ -z $nbf ]] || payload+=",\"nbf\":$((now + nbf))"
        if [[ -n $claims ]]; then
            [[ $claims =~ ^[[:space:]]*\{(.*)\}[[:space:]]*$ ]] || die "--claims must be a JSON object"
            [[ -z ${BASH_REMATCH[1]//[[:space:]]/} ]] || payload+=",${BASH_REMATCH[1]}"
        fi
        payload+="}"
    fi
    local input signature tmp
    input="$(printf '%s' "$header" | b64url).$(printf '%s' "$payload" | b64url)"
    tmp=$(mktemp -d)
    printf '%s' "$input" >"$tmp/input"
    case $alg in
    ES256)
        # openssl writes ECDSA-Sig-Value (DER); JWS wants r || s, 32 bytes each (RFC 7518 §3.4).
        openssl dgst -sha256 -sign "$key" -out "$tmp/sig.der" "$tmp/input"
        local r s
        { read -r r; read -r s; } < <(openssl asn1parse -inform DER -in "$tmp/sig.der" | sed -n 's/.*INTEGER *://p')
        signature=$(printf '%064s%064s' "$r" "$s" | tr ' ' 0 | hex_to_binary | b64url)
        ;;
    RS256) signature=$(openssl dgst -sha256 -sign "$key" "$tmp/input" | b64url) ;;
    EdDSA) signature=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$tmp/input" | b64url) ;;
    esac
    rm -rf "$tmp"
    printf '%s.%s\n' "$input" "$signature"
}

# --dir may come before or after the command; the first other word is the command.
command=
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) if [[ -z $command ]]; then command=$1; else args+=("$1"); fi; shift ;;
    esac
done
[[ -n $command ]] || { usage >&2; exit 2; }
case $command in
init) cmd_init "${args[@]}" ;;
mint) cmd_mint "${args[@]}" ;;
retire) cmd_retire "${args[@]}" ;;
jwks) cat "$DIR/jwks.json" ;;
-h | --help | help) usage ;;
*) die "unknown command '$command' (init, mint, retire, jwks; see --help)" ;;
esac
