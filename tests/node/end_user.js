// A Node application on node-postgres (pg) telling pgtrail who its end user
// is: per request, in the request's transaction, with set_config(..., true)
// (SET LOCAL: it ends with the transaction, so a pooled connection never
// carries one request's user into the next), and a signed token where the
// application holds pgtrail's HMAC secret. docs/end-users.md shows the same
// code. The Rust test (tests/integration/end_users.rs) reads the records.
//
// Usage: node end_user.js HOST PORT USER PASSWORD DBNAME HMAC_SECRET
'use strict';
const crypto = require('crypto');
const { Pool } = require('pg');

const [host, port, user, password, database, secret] = process.argv.slice(2);

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

// An HS256 JWT, as an identity provider or the application would make it.
function token(sub, ttlSeconds, aud) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub, aud, iat: now, exp: now + ttlSeconds }));
  const sig = crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

// Runs fn(client) in a transaction that names the end user.
async function asEndUser(pool, endUser, requestId, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      "SELECT set_config('pgtrail.end_user', $1, true), set_config('pgtrail.request_id', $2, true)",
      [endUser, requestId],
    );
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  } finally {
    client.release();
  }
}

async function main() {
  const pool = new Pool({ host, port: Number(port), user, password, database, max: 1 });
  await pool.query('CREATE TABLE IF NOT EXISTS node_orders (id int primary key, owner text)');
  await asEndUser(pool, 'dave', 'node-1', (c) => c.query('INSERT INTO node_orders VALUES ($1, $2)', [1, 'dave']));
  // Outside the transaction the claim is gone (the same pooled connection).
  await pool.query('SELECT count(*) FROM node_orders');
  // A failed request: its claim goes with the rollback.
  try {
    await asEndUser(pool, 'erin', 'node-2', (c) => c.query('INSERT INTO node_orders VALUES ($1, $2)', [1, 'dup']));
  } catch (e) {
    console.log('duplicate', e.code);
  }
  // A session-level claim, then DISCARD ALL (what a pool's reset does).
  await pool.query("SET pgtrail.end_user = 'frank'");
  await pool.query('SELECT 1 AS as_frank');
  await pool.query('DISCARD ALL');
  await pool.query('SELECT 1 AS after_discard');
  // Signed tokens: valid, expired, wrong audience.
  const tokens = [
    ['valid', token('grace', 600, 'pgtrail')],
    ['expired', token('heidi', -3600, 'pgtrail')],
    ['audience', token('ivan', 600, 'another-service')],
  ];
  for (const [name, t] of tokens) {
    const client = await pool.connect();
    await client.query("SELECT set_config('pgtrail.end_user_token', $1, false)", [t]);
    await client.query(`SELECT '${name}' AS token_case`);
    await client.query('RESET pgtrail.end_user_token');
    client.release();
  }
  await pool.end();
  console.log('done');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
