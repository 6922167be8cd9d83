#!/usr/bin/env bash
# Proof by an outside tool: schemathesis (PyPI) generates requests from the server's own
# OpenAPI document (/api/v1/openapi.json) and fails on any 5xx and on any answer the
# document does not describe. Configuration: tests/schemathesis/schemathesis.toml.
#
# Usage: [PARLEY_BIN=target/release/parley] .ci/schemathesis.sh [EXTRA `st run` OPTIONS]
# (the binary defaults to target/debug/parley, built when absent).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${PARLEY_BIN:-target/debug/parley}
[ -x "$bin" ] || cargo build --locked --bin parley
# Pinned: the configuration's keys and the checks' rules belong to this version.
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "schemathesis==4.32.5"
st="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_email=admin@example.com
admin_password=schemathesis-admin-password

# Rate limits off: the generated requests come fast from one address. Polls are held at
# most 1 s, so a generated `wait` never holds a case for long.
PARLEY_RATE_LIMITS=false RUST_LOG=warn "$bin" serve \
    --addr "127.0.0.1:$port" --db "$work/parley.db" --poll-timeout 1 \
    --admin-email "$admin_email" --admin-password "$admin_password" \
    >"$work/server.log" 2>&1 &
server=$!
stop() {
    local code=$?
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    if grep -E "internal error|panicked" "$work/server.log" >/dev/null; then
        echo "--- the server logged internal errors:"
        grep -E -A3 "internal error|panicked" "$work/server.log" | head -50
        code=1
    fi
    rm -rf "$work"
    exit $code
}
trap stop EXIT

for _ in $(seq 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
# A new session of the admin.
agent_token() {
    curl -fsS -X POST "$base/api/v1/agents/login" -H 'content-type: application/json' \
        -d "{\"email\": \"$admin_email\", \"password\": \"$admin_password\"}" | json_field '["token"]'
}
# A visitor whose chat has a message and a file: sets PARLEY_VISITOR_TOKEN, PARLEY_CHAT_ID
# and PARLEY_ATTACHMENT_ID.
new_visitor() {
    PARLEY_VISITOR_TOKEN=$(curl -fsS -X POST "$base/api/v1/visitors" \
        -H 'content-type: application/json' -d '{"name": "Schemathesis"}' | json_field '["token"]')
    local auth="authorization: Bearer $PARLEY_VISITOR_TOKEN"
    PARLEY_CHAT_ID=$(curl -fsS -X POST "$base/api/v1/chats" -H "$auth" | json_field '["chat"]["id"]')
    curl -fsS -X POST "$base/api/v1/chats/$PARLEY_CHAT_ID/messages" -H "$auth" \
        -H 'content-type: application/json' -d '{"body": "hello"}' >/dev/null
    printf 'a file\n' >"$work/note.txt"
    PARLEY_ATTACHMENT_ID=$(curl -fsS -X POST "$base/api/v1/chats/$PARLEY_CHAT_ID/attachments" \
        -H "$auth" -F "file=@$work/note.txt" | json_field '["message"]["attachment"]["id"]')
}
st_run() {
    echo "=== schemathesis: $1"
    shift
    "$st" --config-file tests/schemathesis/schemathesis.toml run "$base/api/v1/openapi.json" "$@"
}

# Operations that end the session they are called with (logout, a new visitor token) run
# last, each on tokens of its own: run with the others, they would leave every later
# request a 401.
ending=(logout rotate_token)
# Operations open to both a chat's visitor and the agents, run again with an agent token.
shared='^(get_chat|send_message|list_messages|set_typing|mark_read|upload_attachment|download_attachment)$'
status=0

export PARLEY_AGENT_TOKEN PARLEY_VISITOR_TOKEN PARLEY_CHAT_ID PARLEY_ATTACHMENT_ID PARLEY_AGENT_ID
PARLEY_AGENT_TOKEN=$(agent_token)
new_visitor
# The agent that `PATCH /api/v1/agents/{id}` changes: not the admin whose token runs.
PARLEY_AGENT_ID=$(curl -fsS -X POST "$base/api/v1/agents" -H "authorization: Bearer $PARLEY_AGENT_TOKEN" \
    -H 'content-type: application/json' \
    -d '{"email": "agent@example.com", "name": "Agent", "password": "schemathesis-agent"}' |
    json_field '["agent"]["id"]')
st_run "every operation (the visitor's token where both may call)" \
    --exclude-operation-id-regex "^($(IFS='|'; echo "${ending[*]}"))\$" "$@" || status=1

PARLEY_VISITOR_TOKEN=$PARLEY_AGENT_TOKEN st_run "the chat operations with an agent token" \
    --include-operation-id-regex "$shared" "$@" || status=1

for operation in "${ending[@]}"; do
    PARLEY_AGENT_TOKEN=$(agent_token)
    new_visitor
    st_run "$operation, on tokens of its own" --include-operation-id "$operation" "$@" || status=1
done

exit $status
