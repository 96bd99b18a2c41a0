#!/usr/bin/env bash
# Provision the AWS emulator of the test rig: bucket, three roles, one SAML provider per IdP.
#
# Works against the native moto server (run by keycloak/rig.py) and inside the
# LocalStack container, where docker-compose runs it as a "ready" init hook.
# Safe to run again: every step creates what is missing and updates the rest.
# The emulator-only steps come first, so they overlap Keycloak's start-up.
#
# Environment (all optional):
#   ENDPOINT_URL           AWS emulator (default http://localhost:4566)
#   KEYCLOAK_URL           Keycloak base URL (default http://localhost:8080)
#   KEYCLOAK_REALM         realm whose IdP metadata is used (default aws)
#   SAML_PROVIDERS         space-separated NAME=METADATA_URL pairs, one per IdP (default:
#                          SamlExampleProvider from KEYCLOAK_REALM); the roles trust them all
#   KEYCLOAK_WAIT_SECONDS  how long to wait for Keycloak's metadata (default 180)
#   ENDPOINT_WAIT_SECONDS  how long to wait for the emulator (default 60)
set -euo pipefail

ENDPOINT_URL="${ENDPOINT_URL:-http://localhost:4566}"
KEYCLOAK_URL="${KEYCLOAK_URL:-http://localhost:8080}"
KEYCLOAK_REALM="${KEYCLOAK_REALM:-aws}"
KEYCLOAK_WAIT_SECONDS="${KEYCLOAK_WAIT_SECONDS:-180}"
ENDPOINT_WAIT_SECONDS="${ENDPOINT_WAIT_SECONDS:-60}"
BUCKET="example-bucket"
SAML_PROVIDERS="${SAML_PROVIDERS:-SamlExampleProvider=${KEYCLOAK_URL%/}/realms/${KEYCLOAK_REALM}/protocol/saml/descriptor}"

# Dummy keys for the emulator only. The shared AWS files are pointed away so a
# person's real ~/.aws (or a broken one) is never read.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN

log() { echo "localstack-setup: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# The LocalStack image ships awslocal, which adds the endpoint itself; plain
# aws needs --endpoint-url.
if command -v aws >/dev/null 2>&1; then
    awsc() { aws --endpoint-url "$ENDPOINT_URL" --output text "$@"; }
elif command -v awslocal >/dev/null 2>&1; then
    awsc() { awslocal --output text "$@"; }
else
    die "neither 'aws' nor 'awslocal' is on PATH; install the AWS CLI (pip install awscli) and retry."
fi

# curl when present, else Python (the LocalStack image always has python3).
http_get() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 "$1"
    else
        python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
    fi
}

# Wait (bounded) for the emulator.
deadline=$((SECONDS + ENDPOINT_WAIT_SECONDS))
until account="$(awsc sts get-caller-identity --query Account 2>/dev/null)"; do
    ((SECONDS < deadline)) || die "the AWS emulator at $ENDPOINT_URL did not answer within ${ENDPOINT_WAIT_SECONDS}s."
    sleep 1
done
federated=""
for pair in $SAML_PROVIDERS; do
    federated="${federated:+$federated, }\"arn:aws:iam::${account}:saml-provider/${pair%%=*}\""
done

# Bucket.
if awsc s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
    log "bucket $BUCKET exists"
else
    awsc s3api create-bucket --bucket "$BUCKET" >/dev/null
    log "bucket $BUCKET created"
fi
# One object, so that listing the bucket with signed-in credentials shows something.
printf 'Signed in through SAML: these temporary credentials can read this bucket.\n' |
    awsc s3 cp - "s3://$BUCKET/hello-from-saml.txt" >/dev/null

# Roles that trust the SAML provider (IAM accepts the trust policy before the
# provider exists; both AWS and the emulators check it at AssumeRoleWithSAML).
trust_policy="$(
    cat <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": [$federated]},
    "Action": "sts:AssumeRoleWithSAML",
    "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}
  }]
}
EOF
)"

# ensure_role NAME PERMISSIONS_POLICY_JSON [TRUST_POLICY_JSON]
ensure_role() {
    local name="$1" permissions="$2" trust="${3:-$trust_policy}"
    if awsc iam get-role --role-name "$name" >/dev/null 2>&1; then
        awsc iam update-assume-role-policy --role-name "$name" --policy-document "$trust" >/dev/null
        log "role $name updated"
    else
        awsc iam create-role --role-name "$name" --assume-role-policy-document "$trust" \
            --max-session-duration 43200 >/dev/null
        log "role $name created"
    fi
    awsc iam put-role-policy --role-name "$name" --policy-name access --policy-document "$permissions" >/dev/null
}

ensure_role Role.User "$(
    cat <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
  "Resource": ["arn:aws:s3:::$BUCKET", "arn:aws:s3:::$BUCKET/*"]}]}
EOF
)"
ensure_role Role.Admin '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'

# A role reached by role chaining (sts:AssumeRole with the keys of a SAML role): it trusts
# the account itself, so Role.User's and Role.Admin's keys may assume it. AWS caps such a
# chained session at one hour whatever the role's maximum.
ensure_role Role.Chained "$(
    cat <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
  "Resource": ["arn:aws:s3:::$BUCKET", "arn:aws:s3:::$BUCKET/*"]}]}
EOF
)" "$(
    cat <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::${account}:root"}, "Action": "sts:AssumeRole"}]}
EOF
)"

metadata_file="$(mktemp)"
trap 'rm -f "$metadata_file"' EXIT

# ensure_provider NAME METADATA_URL: wait (bounded) for the IdP to publish its metadata,
# then create the SAML provider from it, or update it (a fresh IdP start may bring new keys).
ensure_provider() {
    local name="$1" url="$2" metadata="" deadline=$((SECONDS + KEYCLOAK_WAIT_SECONDS))
    local arn="arn:aws:iam::${account}:saml-provider/${name}"
    until metadata="$(http_get "$url" 2>/dev/null)" && [[ "$metadata" == *EntityDescriptor* ]]; do
        ((SECONDS < deadline)) || die "the IdP did not publish $url within ${KEYCLOAK_WAIT_SECONDS}s; start it (./dev.sh rig up) or set KEYCLOAK_URL."
        sleep 1
    done
    printf '%s' "$metadata" >"$metadata_file"
    if awsc iam get-saml-provider --saml-provider-arn "$arn" >/dev/null 2>&1; then
        awsc iam update-saml-provider --saml-provider-arn "$arn" \
            --saml-metadata-document "file://$metadata_file" >/dev/null
        log "SAML provider $arn updated"
    else
        awsc iam create-saml-provider --name "$name" \
            --saml-metadata-document "file://$metadata_file" >/dev/null
        log "SAML provider $arn created"
    fi
}

for pair in $SAML_PROVIDERS; do
    ensure_provider "${pair%%=*}" "${pair#*=}"
done

log "done: bucket $BUCKET, roles Role.User, Role.Admin and Role.Chained, providers $federated"
