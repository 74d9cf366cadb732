// The tus peer for bench/ingest: @tus/server with its file store, on a free
// loopback port. Not part of Custos; run by run.sh only.
//   node tus-server.mjs STORE_DIR PORT_FILE
import { writeFileSync, renameSync } from "node:fs";
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [dir, portFile] = process.argv.slice(2);
if (!dir || !portFile) {
  console.error("usage: node tus-server.mjs STORE_DIR PORT_FILE");
  process.exit(2);
}

const server = new Server({
  path: "/files",
  datastore: new FileStore({ directory: dir }),
});
const http = server.listen({ host: "127.0.0.1", port: 0 }, () => {
  const tmp = `${portFile}.tmp`;
  writeFileSync(tmp, `${http.address().port}\n`);
  renameSync(tmp, portFile);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
