#!/usr/bin/env bash
# t1022: /metrics moves with the work done: uploads started and completed,
# body bytes received, evidence records, and failures (a quarantined upload).
. "$(dirname "$0")/lib.sh"

expect() { assert_eq "$2" "$(metric "$1")" "$1 ($3)"; }

t_start_server
REC=$(t_token recorder --device cam-0022)
md="device_id $(b64 cam-0022)"
expect custos_uploads_started_total 0 "at start"
expect custos_uploads_completed_total 0 "at start"
expect custos_upload_bytes_received_total 0 "at start"
expect custos_evidence 0 "at start"
expect custos_uploads_failed_total 0 "at start"

t_noise 1000 "$T/a"
t_noise 234 "$T/b"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 1234' -H "Upload-Metadata: $md" "$URL/v1/uploads"
up=$(hdr Location)
expect custos_uploads_started_total 1 "after a POST"
expect custos_uploads_completed_total 0 "after a POST"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/a" "$up"
assert_eq 204 "$ST" "first PATCH"
expect custos_upload_bytes_received_total 1000 "after 1000 bytes"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 1000' --data-binary "@$T/b" "$up"
assert_eq 204 "$ST" "second PATCH"
expect custos_upload_bytes_received_total 1234 "after 1234 bytes"
expect custos_uploads_completed_total 1 "after completion"
expect custos_evidence 1 "after completion"

# A second file in one POST.
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 1000' -H "Upload-Metadata: $md" \
  --data-binary "@$T/a" "$URL/v1/uploads"
assert_eq 201 "$ST" "creation-with-upload"
expect custos_uploads_started_total 2 "after the second upload"
expect custos_uploads_completed_total 2 "after the second upload"
expect custos_upload_bytes_received_total 2234 "after the second upload"
expect custos_evidence 2 "after the second upload"

# A quarantined one counts as started and failed, not completed.
bad=$(printf x | sha256sum | cut -d' ' -f1)
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 234' \
  -H "Upload-Metadata: $md,sha256 $(b64 "$bad")" --data-binary "@$T/b" "$URL/v1/uploads"
assert_eq 460 "$ST" "a declared hash mismatch"
expect custos_uploads_started_total 3 "after a quarantine"
expect custos_uploads_completed_total 2 "after a quarantine"
expect custos_uploads_failed_total 1 "after a quarantine"
expect custos_evidence 2 "after a quarantine"

# Refused requests start nothing.
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 5' -H "Upload-Metadata: device_id $(b64 other)" "$URL/v1/uploads"
assert_eq 403 "$ST" "upload for another device"
expect custos_uploads_started_total 3 "after a refused POST"
[ "$(metric 'custos_http_responses_total{class="4xx"}')" -ge 2 ] || fail "4xx responses not counted"

# Evidence survives a restart, and so does its count.
t_stop_server
t_start_server
expect custos_evidence 2 "after a restart"
t_stop_server
