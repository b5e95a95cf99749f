// The real stack, from the test's side: the API through nginx (TLS, the stack's own certificate),
// the PEMS simulator's control API, pemsctl and pemsworker. Nothing here is mocked.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through scripts/test browser (or eval "$(scripts/stack env)")`);
  return v;
}

export const PEMS_URL = need('PEMS_URL');
export const SIM_URL = need('PEMS_SIM_URL');
const CA = readFileSync(path.join(need('STACK_DIR'), 'tls', 'cert.pem'));

export function tag(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function pemsctl(...args) {
  return execFileSync('pemsctl', args, { encoding: 'utf8', timeout: 30000 }).trim();
}

export function psql(sql) {
  return execFileSync('psql', ['-qtAX', need('DATABASE_URL'), '-v', 'ON_ERROR_STOP=1', '-c', sql],
    { encoding: 'utf8', timeout: 30000 }).trim();
}

// scripts/stack VERB on the stack under test (db-stop / db-start for the outage test)
const STACK_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/stack');
export function stack(verb) {
  execFileSync(STACK_SCRIPT, [verb], { stdio: 'ignore', timeout: 120000 });
}

export function workerOnce() {
  execFileSync('pemsworker', ['--once'], { stdio: 'ignore', timeout: 120000 });
}

// the API through nginx, verified against the stack's certificate
export function api(method, route, token, body) {
  const url = new URL(route, PEMS_URL);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method,
      ca: CA,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
      },
      timeout: 30000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { json = null; }
        resolve({ status: res.statusCode, headers: res.headers, body: json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${route}: timeout`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// a call that must answer `status`; its JSON body
export async function apiOk(status, method, route, token, body) {
  const r = await api(method, route, token, body);
  if (r.status !== status) throw new Error(`${method} ${route}: HTTP ${r.status} (wanted ${status}): ${r.text.slice(0, 300)}`);
  return r.body;
}

export async function sim(method, tenant, route, body) {
  const sep = route.includes('?') ? '&' : '?';
  const res = await fetch(`${SIM_URL}/__sim${route}${sep}tenant=${encodeURIComponent(tenant)}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`sim ${method} ${route} (${tenant}): HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export const simRecord = (tenant, pfaId) => sim('GET', tenant, `/records/${encodeURIComponent(pfaId)}`);

export const RECORD = {
  category: 'Cranes', forecastCategory: 'Lifting', class: 'Mobile Crane', areaSilo: 'North',
  manufacturer: 'Liebherr', model: 'LTM 1100', contract: 'C-100', equipment: 'EQ-1', source: 'Rental',
  dor: 'BEO', isActualized: false, isDiscontinued: false, isFundsTransferable: true, hasPlan: true,
  hasActuals: false, monthlyRate: 12000, purchasePrice: null, originalStart: '2025-01-01',
  originalEnd: '2025-12-31', forecastStart: '2025-02-01', forecastEnd: '2025-11-30',
  actualStart: null, actualEnd: null,
};

// polls fn() until it returns a truthy value; that value, or an error naming `what`
export async function until(what, fn, timeoutMs = 30000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
