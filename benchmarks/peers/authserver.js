// A token daemon written the way a Node.js developer would, for bench_authserver.py: the same
// job as okera-authserver (GET /<user>: an RS512 JWT with sub, iat, exp, jti and a kid header,
// written to <dir>/<user>.<nanos>.token with mode 0640 and the group given, the path answered,
// the file deleted after the delete window). Only node:http, node:crypto and node:fs; signing
// and file writes run on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default).
//
//   node authserver.js --key KEY.pem --directory DIR --gid GID [--port 0] [--delete-after 10]
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const options = { port: '0', 'delete-after': '10' };
for (let index = 2; index < process.argv.length; index += 2) {
  options[process.argv[index].replace(/^--/, '')] = process.argv[index + 1];
}
const key = crypto.createPrivateKey(fs.readFileSync(options.key));
const publicDer = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
const kid = crypto.createHash('sha256').update(publicDer).digest('base64url');
const header = Buffer.from(JSON.stringify({ alg: 'RS512', typ: 'JWT', kid })).toString('base64url');
const directory = options.directory;
const gid = Number(options.gid);
const deleteAfter = Number(options['delete-after']) * 1000;
const userName = /^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$/;
let lastNanos = 0n;

fs.mkdirSync(directory, { recursive: true, mode: 0o750 });

function fail(response, status, message) {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(message + '\n');
}

function writeToken(file, data, done) {
  fs.open(file, 'wx', 0o640, (error, fd) => {
    if (error) return done(error);
    fs.fchown(fd, -1, gid, (chownError) => {
      if (chownError) return fs.close(fd, () => done(chownError));
      fs.write(fd, data, (writeError) => fs.close(fd, (closeError) => done(writeError || closeError)));
    });
  });
}

const server = http.createServer((request, response) => {
  const user = decodeURIComponent(request.url.slice(1).split('?')[0]);
  if (request.method !== 'GET' || !userName.test(user) || user.includes('..')) {
    return fail(response, 400, 'bad request');
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: user, iat: now, exp: now + 86400, jti: crypto.randomBytes(16).toString('hex') };
  const input = header + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url');
  crypto.sign('sha512', Buffer.from(input), key, (error, signature) => {
    if (error) return fail(response, 500, 'cannot sign');
    const token = input + '.' + signature.toString('base64url');
    let nanos = BigInt(Date.now()) * 1000000n;
    if (nanos <= lastNanos) nanos = lastNanos + 1n;
    lastNanos = nanos;
    const file = path.join(directory, user + '.' + nanos + '.token');
    writeToken(file, token, (writeError) => {
      if (writeError) return fail(response, 500, 'cannot write the token file');
      setTimeout(() => fs.unlink(file, () => {}), deleteAfter);
      response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8',
                                'Content-Length': Buffer.byteLength(file) });
      response.end(file);
    });
  });
});
server.keepAliveTimeout = 10000;
server.listen(Number(options.port), '127.0.0.1', () => {
  console.log('Listening on http://127.0.0.1:' + server.address().port);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
