// A tus-js-client 4.3.1 run against a Custos server, for the integration
// tests (t2005). It prints one JSON line describing what happened: the
// upload URL, the requests the client sent and the answers it got, and the
// Custos-SHA256 / Custos-Evidence-Id of the last answer.
//
//   node tus-client.cjs MODE ENDPOINT FILE [UPLOAD_URL]
//
// MODE: full      upload the whole file (POST, then PATCH chunks)
//       abort     POST and one PATCH, then abort() from onChunkComplete
//       resume    a new Upload with uploadUrl = UPLOAD_URL: HEAD, then PATCHes
//       creation  uploadDataDuringCreation: true (the first chunk in the POST)
// The environment gives CUSTOS_TOKEN (a recorder token), CUSTOS_DEVICE and
// optionally TUS_CHUNK (bytes, default 256 KiB).
'use strict';
const fs = require('fs');
const path = require('path');
const tus = require('tus-js-client');

const [mode, endpoint, file, uploadUrl] = process.argv.slice(2);
if (!mode || !endpoint || !file || (mode === 'resume' && !uploadUrl)) {
  console.error('usage: node tus-client.cjs full|abort|resume|creation ENDPOINT FILE [UPLOAD_URL]');
  process.exit(2);
}
const token = process.env.CUSTOS_TOKEN;
const chunkSize = Number(process.env.TUS_CHUNK || 256 * 1024);
const log = [];
let last = null;

const options = {
  endpoint,
  chunkSize,
  // No retries: a retry would hide a server answer the test wants to see.
  retryDelays: null,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: path.basename(file), device_id: process.env.CUSTOS_DEVICE || '' },
  onBeforeRequest(req) {
    log.push({ method: req.getMethod(), offset: req.getHeader('Upload-Offset') ?? null });
  },
  onAfterResponse(req, res) {
    const e = log[log.length - 1];
    e.status = res.getStatus();
    e.resOffset = res.getHeader('Upload-Offset') ?? null;
    last = res;
  },
};
if (mode === 'resume') options.uploadUrl = uploadUrl;
if (mode === 'creation') options.uploadDataDuringCreation = true;

const result = (extra) => ({
  mode,
  url: upload.url,
  requests: log,
  sha256: last ? last.getHeader('Custos-SHA256') ?? null : null,
  evidence: last ? last.getHeader('Custos-Evidence-Id') ?? null : null,
  ...extra,
});

const upload = new tus.Upload(fs.createReadStream(file), {
  ...options,
  onError(err) {
    console.log(JSON.stringify(result({ ok: false, error: String(err) })));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify(result({ ok: true })));
  },
  onChunkComplete(size, accepted, total) {
    if (mode !== 'abort') return;
    upload.abort().then(() => {
      console.log(JSON.stringify(result({ ok: true, aborted: true, accepted, total })));
    });
  },
});
upload.start();
