// A webhook receiver as an integrator would write one: Node's http server and the
// npm `standardwebhooks` package (not our code) verifying every delivery. The tests
// drive it: it can fail (HTTP 500), hang (never answer), answer with a 10 MB body,
// or accept; it keeps what it verified and counts what it could not.
//
//   node webhook-receiver.mjs [CERT KEY]  prints {"port": N} once listening (IPv4 and IPv6)
//                                         (HTTPS with that certificate when given)
//   POST /control {"mode": "ok"|"fail"|"hang"|"big"|"redirect", "secrets": ["whsec_..."]}
//   GET  /received                       {"received": [...], "rejected": n, "attempts": n}
//   GET  /count                          {"distinct": n, "rejected": n} (cheap, for throughput runs)
//   POST /hook                           a delivery
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Webhook } = require('standardwebhooks');

let mode = 'ok';
let secrets = [];
let attempts = 0;
let rejected = 0;
const received = [];
const distinct = new Set();
const hanging = [];
let redirectFollowed = 0;

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const handler = async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/control') {
      const control = JSON.parse(await readBody(req, 65536));
      if (control.mode) mode = control.mode;
      if (control.secrets) secrets = control.secrets;
      if (mode !== 'hang') {
        for (const socket of hanging.splice(0)) socket.destroy();
      }
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url === '/count') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ distinct: distinct.size, rejected }));
      return;
    }
    if (req.method === 'GET' && req.url === '/received') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ received, rejected, attempts, redirectFollowed }));
      return;
    }
    if (req.url.startsWith('/elsewhere')) {
      redirectFollowed += 1;
      res.writeHead(200).end('followed');
      return;
    }
    if (req.method !== 'POST' || !req.url.startsWith('/hook')) {
      res.writeHead(404).end();
      return;
    }
    const body = await readBody(req, 1 << 20);
    attempts += 1;
    // The library checks the signature (any of the space-separated ones) and the timestamp's freshness.
    let payload = null;
    for (const secret of secrets) {
      try {
        payload = new Webhook(secret).verify(body, req.headers);
        break;
      } catch (e) {
        // try the next secret
      }
    }
    if (payload === null) {
      rejected += 1;
      res.writeHead(401).end('signature');
      return;
    }
    if (mode === 'fail') {
      res.writeHead(500).end('failing on purpose');
      return;
    }
    if (mode === 'redirect') {
      res.writeHead(307, { location: '/elsewhere' }).end();
      return;
    }
    if (mode === 'hang') {
      hanging.push(req.socket);  // never answered
      return;
    }
    distinct.add(req.headers['webhook-id']);
    received.push({
      id: req.headers['webhook-id'],
      signatures: req.headers['webhook-signature'].split(' ').length,
      type: payload.type,
      data: payload.data,
    });
    if (mode === 'big') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1 << 20, 'x');
      for (let i = 0; i < 10; i += 1) res.write(chunk);
      res.end();
      return;
    }
    res.writeHead(200).end('ok');
  } catch (e) {
    res.writeHead(400).end(String(e));
  }
};
const [certFile, keyFile] = process.argv.slice(2);
const server = certFile
  ? https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, handler)
  : http.createServer(handler);

// Both loopbacks (dual-stack): "localhost" may resolve to either.
server.listen(0, '::', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
