// The dashboard in Debian's chromium (playwright-core drives /usr/bin/chromium) against the real
// stack: nginx + TLS, pems-fcgi, PostgreSQL, pemsworker and the PEMS simulator. Each test acts
// as a person would (by role and accessible name) and checks the result where it lands: the
// API's answers and what the simulator (PEMS) now holds.
//   node --test dashboard.test.mjs      (scripts/test browser runs it with the stack's env)
// Screenshots and the axe-core report go to $PEMS_BROWSER_OUT (default ./output).
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  PEMS_URL, RECORD, api, apiOk, pemsctl, psql, sim, stack, simRecord, tag, until, workerOnce,
} from './stack.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const OUT = path.resolve(process.env.PEMS_BROWSER_OUT || path.join(path.dirname(fileURLToPath(import.meta.url)), 'output'));
mkdirSync(OUT, { recursive: true });

// this machine has no network beyond loopback: nothing in the browser may try to reach out
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const PFA = (n) => `D-${String(n).padStart(2, '0')}`;
const TOTAL_RECORDS = 20;
const LABELS = { monthlyRate: 'Monthly rate', model: 'Model', contract: 'Contract', areaSilo: 'Area (silo)', forecastEnd: 'Forecast end' };

let browser;
let context;
let page;
let org;       // {id, code}
let orgB;      // a second membership, Read only
let tenant;
let token;
let userId;
let username;
let syncMods = [];
const cspViolations = [];
const requestedUrls = [];
const axeReport = [];
const screenshots = [];

async function shot(name, target = page) {
  const file = path.join(OUT, `${name}.png`);
  await target.screenshot({ path: file, fullPage: target === page });
  screenshots.push(file);
  console.log(`screenshot: ${file}`);
}

// axe-core, evaluated through the DevTools protocol (the page's CSP forbids injected scripts)
async function axe(name, p = page, include = undefined) {
  await p.evaluate(AXE_SOURCE);
  const result = await p.evaluate(async (sel) => {
    const r = await window.axe.run(sel ? { include: [sel] } : document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  }, include);
  const counts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
  for (const v of result) counts[v.impact] = (counts[v.impact] || 0) + 1;
  axeReport.push({ view: name, counts, violations: result });
  console.log(`axe ${name}: critical ${counts.critical}, serious ${counts.serious}, moderate ${counts.moderate}, minor ${counts.minor}`
    + (result.length ? ` (${result.map((v) => `${v.id}/${v.impact}`).join(', ')})` : ''));
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe: serious or critical violations on ${name}`);
}

async function newContext(options = {}) {
  const ctx = await browser.newContext({
    ignoreHTTPSErrors: true, // the stack's self-signed certificate
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    timezoneId: 'UTC',
    ...options,
  });
  ctx.setDefaultTimeout(20000);
  return ctx;
}

function watch(p) {
  p.on('request', (r) => requestedUrls.push(r.url()));
  p.on('console', (m) => {
    if (m.type() === 'error') console.log(`browser console: ${m.text()}`);
  });
  p.on('pageerror', (e) => console.log(`browser page error: ${e.message}`));
}

async function recordCsp(p) {
  await p.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await p.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}

async function modify(n, delta, t = token) {
  const rec = await simRecord(tenant, PFA(n));
  return apiOk(201, 'POST', '/api/pems/modifications', t, {
    organizationId: org.id, pfaId: PFA(n), operation: 'update', baseVersion: rec.version, delta,
  });
}

const getMod = (id) => apiOk(200, 'GET', `/api/pems/modifications/${id}`, token);
const modStatus = async (id) => (await getMod(id)).status;

async function conflictOf(modification) {
  const r = await apiOk(200, 'GET', `/api/pems/conflicts?organizationId=${org.id}&status=unresolved&limit=500`, token);
  return r.conflicts.find((c) => c.pfaId === modification.pfaId);
}

// a modification edited upstream on the same fields: queued, written, answered 409, held
async function makeConflict(n, localDelta, pemsChanges) {
  const m = await modify(n, localDelta);
  await sim('POST', tenant, `/records/${PFA(n)}/edit`, { changes: pemsChanges });
  await apiOk(202, 'POST', '/api/pems/write-sync', token, { organizationId: org.id, modificationIds: [m.id] });
  await until(`${PFA(n)} to become a conflict`, async () => (await modStatus(m.id)) === 'conflict');
  return m;
}

const dialog = (p = page) => p.getByRole('dialog', { name: 'Resolve conflict' });
const conflictsSection = () => page.locator('#conflicts-view');
const modsSection = () => page.locator('#modifications-view');
// a record's row in the conflicts list, or in the queue viewer
const cRow = (text) => conflictsSection().getByRole('row').filter({ hasText: text });
const mRow = (text) => modsSection().getByRole('row').filter({ hasText: text });

async function textOf(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

describe('dashboard in chromium against the real stack', () => {
  before(async () => {
    tenant = tag('dash');
    const password = tag('pw');
    await sim('POST', tenant, '/reset');
    await sim('POST', tenant, '/config', { username: 'pems-dash', password });
    await sim('PUT', tenant, '/records', {
      records: Array.from({ length: TOTAL_RECORDS }, (_, i) => ({ pfaId: PFA(i + 1), version: 1, data: RECORD })),
    });
    const code = tag('DASH').toUpperCase();
    org = { id: pemsctl('org', 'add', '--code', code, '--name', `Dashboard ${code}`), code };
    const codeB = tag('READ').toUpperCase();
    orgB = { id: pemsctl('org', 'add', '--code', codeB, '--name', `Read only ${codeB}`), code: codeB };
    username = tag('planner');
    userId = pemsctl('user', 'add', '--username', username, '--email', `${username}@example.test`,
      '--org', org.id, '--perm', 'Read,Write,Sync');
    pemsctl('user', 'add', '--username', username, '--email', `${username}@example.test`, '--org', orgB.id, '--perm', 'Read');
    pemsctl('server', 'add', '--org', org.id, '--url', `${process.env.PEMS_SIM_URL}/t/${tenant}`,
      '--user', 'pems-dash', '--password', password, '--rps', '100');
    token = pemsctl('token', '--user', userId, '--ttl', '3600');
    workerOnce(); // the records into the mirror
    await until('the mirror to hold the records', async () =>
      Number(psql(`SELECT count(*) FROM pfa_mirror WHERE organization_id = '${org.id}'`)) === TOTAL_RECORDS
      || (workerOnce(), false), 60000, 500);

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    context = await newContext();
    page = await context.newPage();
    watch(page);
    await recordCsp(page);
  });

  // a test that failed with the dialog open does not take the next ones down with it
  afterEach(async () => {
    if (page && await dialog().isVisible().catch(() => false)) {
      await page.evaluate(() => document.getElementById('resolve-dialog').close());
    }
  });

  after(async () => {
    writeFileSync(path.join(OUT, 'axe-report.json'), `${JSON.stringify(axeReport, null, 2)}\n`);
    console.log(`axe report: ${path.join(OUT, 'axe-report.json')}`);
    console.log(`screenshots (${screenshots.length}):\n${screenshots.map((s) => `  ${s}`).join('\n')}`);
    if (browser) await browser.close();
  });

  it('serves the page with its Content-Security-Policy', async () => {
    const r = await api('GET', '/', null);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/);
    const csp = r.headers['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const chart = await api('GET', '/javascript/chart.js/chart.esm.js', null);
    assert.equal(chart.status, 200, "Debian's Chart.js served by nginx");
    assert.match(chart.headers['content-type'], /^text\/javascript/);
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
    assert.doesNotMatch(r.text, /\sstyle=|<style/i, 'no inline style');
  });

  it('shows the sign-in view without a token; axe finds nothing serious', async () => {
    await page.goto(`${PEMS_URL}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Paste a token first.').waitFor();
    // words for planners: no JWT, no operator's command
    assert.doesNotMatch(await textOf(page.locator('#signin')), /JWT|pemsctl|scripts\//);
    await shot('01-sign-in');
    await axe('sign-in');
  });

  it('signs in through the URL fragment, which never reaches a server and leaves the address bar', async () => {
    await page.goto(`${PEMS_URL}/#token=${token}`);
    await page.getByRole('heading', { name: 'Sync status' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the fragment is removed from the address bar');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pems.token')), token);
    assert.equal(await page.evaluate(() => history.length >= 1 && !location.href.includes('token')), true);
    const org_ = page.getByRole('combobox', { name: 'Organization' });
    const options = await org_.locator('option').allTextContents();
    assert.equal(options.length, 2, `both memberships listed: ${options}`);
    assert.deepEqual(options.sort(), [`Dashboard ${org.code}`, `Read only ${orgB.code}`].sort(), 'by name');
    await org_.selectOption({ label: `Dashboard ${org.code}` });
    await page.getByRole('button', { name: 'Sync now' }).waitFor();
    for (const u of requestedUrls) assert.ok(!u.includes(token), `the token is in no requested URL (${u})`);
    // the signed-in person is named
    assert.equal(await textOf(page.locator('#who')), `Signed in as ${username} (${username}@example.test)`);
  });

  it('shows the counts of the sync status as the API reports them', async () => {
    const mods = [];
    for (const n of [1, 2, 3]) mods.push(await modify(n, { monthlyRate: 12500 + n, areaSilo: `Area ${n}` }));
    // the list shows them, pending
    await until('three pending modifications listed', async () =>
      (await modsSection().locator('tbody').getByText('Pending sync', { exact: true }).count()) === 3);
    const s = await apiOk(200, 'GET', `/api/pems/sync-status?organizationId=${org.id}`, token);
    const fmt = (n) => new Intl.NumberFormat('en-US').format(n);
    const figure = async (label) => textOf(page.locator('#stats div')
      .filter({ has: page.locator('dt').getByText(label, { exact: true }) }).locator('dd'));
    await until('the figures to be shown', async () => (await figure('Synced to PEMS')) !== '—', 15000);
    assert.equal(await figure('Queued'), fmt(s.totalQueued));
    assert.equal(await figure('Synced to PEMS'), fmt(s.synced), 'completed writes: the synced ones, never a conflict');
    assert.equal(await figure('Open conflicts'), fmt(s.conflicts));
    assert.equal(await figure('Failed'), fmt(s.failed));
    assert.equal(await figure('Success rate'), s.successRate === null ? '—' : `${s.successRate}%`);
    assert.match(await textOf(page.locator('#health')), new RegExp(`Health: ${s.health}`));
    // edits not queued yet, named with the action that sends them, in the summary and the list
    await until('the summary to count the three waiting edits', async () =>
      (await figure('Waiting for Sync now')) === '3 Sync now sends them', 15000);
    await until('each named with Sync now', async () =>
      (await modsSection().getByText('Not queued yet. Sync now sends it.').count()) === 3, 15000);
    syncMods = mods;
  });

  it('triggers a sync with "Sync now"; PEMS receives the edits; a toast says the sync finished', async () => {
    await page.getByRole('button', { name: 'Sync now' }).click();
    const toasts = page.getByRole('status');
    await toasts.getByText(/Sync started: 3 modifications queued/).waitFor();
    for (const [i, m] of syncMods.entries()) {
      await until(`${m.pfaId} synced`, async () => (await modStatus(m.id)) === 'synced');
      const rec = await simRecord(tenant, PFA(i + 1));
      assert.equal(rec.data.monthlyRate, 12500 + i + 1, 'PEMS has the local rate');
      assert.equal(rec.data.areaSilo, `Area ${i + 1}`, 'PEMS has the local area');
      assert.equal(rec.version, 2);
    }
    await toasts.getByText(`Sync finished for ${org.code}: 3 completed.`, { exact: true }).waitFor();
    await until('the list to show them synced', async () =>
      (await modsSection().locator('tbody').getByText('Synced', { exact: true }).count()) === 3, 20000);
    const s = await apiOk(200, 'GET', `/api/pems/sync-status?organizationId=${org.id}`, token);
    assert.equal(s.completed, 3);
    await until('the Completed figure to follow', async () =>
      (await textOf(page.locator('#st-completed'))) === '3', 15000);
    await until('the chart table to count 3 synced', async () => {
      const cells = await page.locator('#history-table tbody tr td:nth-child(2)').allTextContents();
      return cells.reduce((n, c) => n + Number(c.replace(/\D/g, '') || 0), 0) === 3;
    }, 40000, 1000);
    await page.locator('#status-view').scrollIntoViewIfNeeded();
    await shot('02-sync-status', page.locator('#status-view'));
  });

  it('polls with If-None-Match: an unchanged view costs a 304', async () => {
    const statuses = [];
    const onResponse = (r) => {
      if (r.url().includes('/api/pems/sync-status')) statuses.push(r.status());
    };
    page.on('response', onResponse);
    await until('two polls of /sync-status', async () => statuses.length >= 2, 15000);
    page.off('response', onResponse);
    assert.ok(statuses.includes(304), `a poll answered 304 (saw ${statuses.join(',')})`);
  });

  let merged;
  it('resolves a conflict field by field: an invalid value is shown on its field, the payload before it is sent, and PEMS gets the merge', async () => {
    merged = await makeConflict(4, { monthlyRate: 13000, model: 'Local M', contract: 'C-LOCAL' },
      { monthlyRate: 14000, model: 'PEMS M', areaSilo: 'PEMS area' });
    await until('the badge to count the conflict', async () =>
      /^1\s*unresolved$/.test(await textOf(page.locator('#conflict-badge'))), 15000);
    await page.getByRole('status').getByText(`1 new conflict to resolve in ${org.code}.`).waitFor();
    const opener = cRow(PFA(4)).getByRole('button', { name: 'Resolve' });
    await opener.click();
    const d = dialog();
    await d.waitFor();
    assert.equal(await page.getByRole('button', { name: 'Use local', exact: true }).count(), 1,
      "only the dialog's own Use local while it is open");
    // each field by its name in words, its key beside it
    const group = (f) => d.getByRole('group', { name: `${LABELS[f]} ${f}`, exact: true });
    // the three columns: base (version 1, what the edit was made on), local, PEMS
    const rate = group('monthlyRate');
    assert.match(await textOf(rate), /Base version 1 12,000 Local 13,000 PEMS version 2 14,000/);
    assert.match(await rate.getAttribute('class'), /conflict/, 'overlapping field highlighted');
    assert.match(await group('contract').getAttribute('class'), /merged/, 'local-only field shown merged');
    assert.ok(await group('contract').getByRole('radio', { name: 'Local', exact: true }).isChecked());
    assert.match(await textOf(group('areaSilo')), /Only PEMS changed this field.*PEMS version 2 PEMS area/);
    await shot('03-resolve-dialog', d);
    await axe('resolve dialog');

    // an edited value the API refuses: its message lands on the field
    await rate.getByRole('radio', { name: 'Other value' }).check();
    await rate.getByRole('textbox').fill('-5');
    await group('model').getByRole('radio', { name: 'PEMS', exact: true }).check();
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    // far outside both sides: asked once on the field, then Merge again shows the payload
    await rate.locator('.field-error').filter({ hasText: /far from both Local/ }).waitFor();
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    await d.getByRole('button', { name: 'Send', exact: true }).click();
    await rate.locator('.field-error').filter({ hasText: /./ }).waitFor();
    const fieldError = await textOf(rate.locator('.field-error'));
    assert.ok(fieldError.length > 0, 'the validation message is on monthlyRate');
    assert.equal(await rate.getByRole('textbox').getAttribute('aria-invalid'), 'true');
    assert.equal(await modStatus(merged.id), 'conflict', 'nothing resolved');

    await rate.getByRole('radio', { name: 'Local', exact: true }).check();
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    const payload = JSON.parse(await d.locator('#merge-payload').textContent());
    assert.deepEqual(payload, {
      resolution: 'merge',
      mergedData: { monthlyRate: 13000, model: 'PEMS M', contract: 'C-LOCAL' },
    }, 'the exact payload is shown before it is sent');
    // with the payload on screen, Merge again sends it
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    await d.waitFor({ state: 'hidden' });
    await page.getByRole('status').getByText(`Conflict on ${PFA(4)} resolved: merged.`).waitFor();
    await until('the merge written to PEMS', async () => (await modStatus(merged.id)) === 'synced');
    const rec = await simRecord(tenant, PFA(4));
    assert.deepEqual(
      { monthlyRate: rec.data.monthlyRate, model: rec.data.model, contract: rec.data.contract, areaSilo: rec.data.areaSilo },
      { monthlyRate: 13000, model: 'PEMS M', contract: 'C-LOCAL', areaSilo: 'PEMS area' },
      'PEMS holds the per-field merge on top of its own change');
    assert.equal(rec.version, 3);
  });

  it('resolves two conflicts at once with the bulk "Use local"', async () => {
    const a = await makeConflict(5, { monthlyRate: 15005 }, { monthlyRate: 16005 });
    const b = await makeConflict(6, { monthlyRate: 15006 }, { monthlyRate: 16006 });
    await until('both listed', async () => (await cRow(PFA(5)).count()) === 1 && (await cRow(PFA(6)).count()) === 1, 15000);
    await shot('04-conflicts', conflictsSection());
    await page.getByRole('checkbox', { name: `Select ${PFA(5)}` }).check();
    await page.getByRole('checkbox', { name: `Select ${PFA(6)}` }).check();
    await page.getByText('2 selected:').waitFor();
    // a bulk action asks once: "Go back" does nothing, the confirmation does it
    await conflictsSection().getByRole('button', { name: 'Use local', exact: true }).click();
    const ask = page.getByRole('dialog', { name: 'Resolve 2 conflicts?' });
    await ask.waitFor();
    assert.match(await textOf(ask), new RegExp(`${PFA(5)}.*${PFA(6)}|${PFA(6)}.*${PFA(5)}`), 'it names the records');
    await shot('04b-bulk-asks-once', ask);
    await axe('bulk confirmation');
    await ask.getByRole('button', { name: 'Go back' }).click();
    await ask.waitFor({ state: 'hidden' });
    assert.equal(await modStatus(a.id), 'conflict', 'Go back resolved nothing');
    await conflictsSection().getByRole('button', { name: 'Use local', exact: true }).click();
    await ask.getByRole('button', { name: 'Use local for 2' }).click();
    await page.getByRole('status').getByText('2 conflicts resolved: kept the local edit.').waitFor();
    const left = (await apiOk(200, 'GET', `/api/pems/conflicts?organizationId=${org.id}&status=unresolved`, token)).total;
    const focused = await page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.dataset.focusKey));
    if (left === 0) assert.equal(focused, 'conflicts-view', 'with nothing left to resolve, focus goes to the Conflicts list');
    else assert.match(String(focused), /^resolve-/, 'focus goes to the next conflict to resolve');
    for (const [n, m] of [[5, a], [6, b]]) {
      await until(`${m.pfaId} written`, async () => (await modStatus(m.id)) === 'synced');
      const rec = await simRecord(tenant, PFA(n));
      assert.equal(rec.data.monthlyRate, 15000 + n, `PEMS has ${PFA(n)}'s local value`);
    }
    await until('the list to empty', async () => (await cRow(PFA(5)).count()) === 0 && (await cRow(PFA(6)).count()) === 0, 15000);
  });

  it('resolves one conflict by keyboard alone; Esc closes the dialog and focus returns to "Resolve"', async () => {
    const m = await makeConflict(7, { monthlyRate: 17007 }, { monthlyRate: 18007 });
    const c = await conflictOf(m);
    const key = `resolve-${c.id}`;
    await until('its row', async () => (await cRow(PFA(7)).count()) === 1, 15000);
    const focusedKey = () => page.evaluate(() => document.activeElement && document.activeElement.dataset.focusKey);
    // from the top of the page, Tab until the row's Resolve button has focus
    await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
    await page.locator('body').focus();
    let tabs = 0;
    while ((await focusedKey()) !== key) {
      await page.keyboard.press('Tab');
      tabs += 1;
      assert.ok(tabs < 200, 'the Resolve button is reachable with Tab');
    }
    await page.keyboard.press('Enter');
    await dialog().waitFor();
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'hidden' });
    assert.equal(await focusedKey(), key, 'focus is back on the Resolve button');
    await page.keyboard.press('Enter');
    await dialog().waitFor();
    // focus starts on the first conflicting field's "Local"; Space chooses it
    assert.equal(await page.evaluate(() => document.activeElement.labels[0].textContent), 'Local');
    await page.keyboard.press('Space');
    const focusedName = () => page.evaluate(() => document.activeElement.textContent);
    tabs = 0;
    while ((await focusedName()) !== 'Merge') {
      await page.keyboard.press('Tab');
      tabs += 1;
      assert.ok(tabs < 30, 'Merge is reachable with Tab');
    }
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'merge-payload', 'focus moves to the payload');
    assert.deepEqual(JSON.parse(await page.locator('#merge-payload').textContent()),
      { resolution: 'merge', mergedData: { monthlyRate: 17007 } });
    await page.keyboard.press('Tab');
    assert.equal(await focusedName(), 'Send');
    await page.keyboard.press('Enter');
    await dialog().waitFor({ state: 'hidden' });
    await until('the keyboard merge written to PEMS', async () => (await modStatus(m.id)) === 'synced');
    assert.equal((await simRecord(tenant, PFA(7))).data.monthlyRate, 17007);
  });

  it('retries a failed item with "Retry"', async () => {
    await sim('POST', tenant, '/faults', { pfaId: PFA(8), status: 400, count: 1 });
    const m = await modify(8, { model: 'Retried' });
    await apiOk(202, 'POST', '/api/pems/write-sync', token, { organizationId: org.id, modificationIds: [m.id] });
    await until('the write to fail for good', async () => (await modStatus(m.id)) === 'sync_error');
    const r = mRow(PFA(8));
    await until('the row to show the failure', async () =>
      /failed.*last HTTP status 400/.test(await textOf(r)), 15000);
    await shot('05-modifications-failed', modsSection());
    await r.getByRole('button', { name: 'Retry', exact: true }).click();
    await page.getByRole('status').getByText(`${PFA(8)} sent to the queue again.`).waitFor();
    await until('the retry written to PEMS', async () => (await modStatus(m.id)) === 'synced');
    assert.equal((await simRecord(tenant, PFA(8))).data.model, 'Retried');
  });

  it('cancels a pending item with "Cancel", then two at once; the modifications are kept as drafts', async () => {
    // PEMS answers 503 for these records: the items wait, pending, for their next attempt
    for (const n of [9, 11, 12]) await sim('POST', tenant, '/faults', { pfaId: PFA(n), status: 503, count: 1000 });
    try {
      const m = await modify(9, { model: 'Never sent' });
      const more = [await modify(11, { model: 'Never sent 11' }), await modify(12, { model: 'Never sent 12' })];
      await apiOk(202, 'POST', '/api/pems/write-sync', token,
        { organizationId: org.id, modificationIds: [m.id, ...more.map((x) => x.id)] });
      for (const x of [m, ...more]) {
        await until(`a failed attempt of ${x.pfaId}, pending again`, async () => {
          const q = (await getMod(x.id)).queueItem;
          return q && q.status === 'pending' && q.attempts >= 1;
        });
      }
      const r = mRow(PFA(9));
      const cancel = r.getByRole('button', { name: 'Cancel', exact: true });
      await cancel.waitFor();
      // what will be sent to PEMS
      await r.getByText('What will be sent').click();
      const preview = await textOf(r.locator('pre'));
      assert.match(preview, new RegExp(`^PUT /pfa/${PFA(9)} \\{ "version": 1, "changes": \\{ "model": "Never sent" \\} \\}$`));
      await cancel.click();
      await page.getByRole('status').getByText(`${PFA(9)} taken off the queue`).waitFor();
      const after_ = await getMod(m.id);
      assert.equal(after_.status, 'draft');
      assert.equal(after_.queueItem.status, 'cancelled');
      await until('the row to show a draft', async () => /Draft/.test(await textOf(mRow(PFA(9)))), 15000);
      assert.notEqual((await simRecord(tenant, PFA(9))).data.model, 'Never sent', 'nothing reached PEMS');

      // the other two together: select, choose the action, apply
      for (const x of more) {
        await until(`${x.pfaId}'s checkbox`, async () => (await mRow(x.pfaId).getByRole('checkbox').count()) === 1, 15000);
        await mRow(x.pfaId).getByRole('checkbox').check();
      }
      await page.getByText('2 selected:').waitFor();
      await page.getByRole('combobox', { name: 'Action for the selected items' }).selectOption('cancel');
      await page.getByRole('button', { name: 'Apply to selected' }).click();
      await page.getByRole('dialog', { name: 'Take off the queue: 2 items?' })
        .getByRole('button', { name: 'Take off the queue (2)' }).click();
      await page.getByRole('status').getByText('2 items taken off the queue (kept as drafts).').waitFor();
      for (const x of more) {
        const after2 = await getMod(x.id);
        assert.equal(`${after2.status}/${after2.queueItem.status}`, 'draft/cancelled', x.pfaId);
        assert.notEqual((await simRecord(tenant, x.pfaId)).data.model, x.delta.model, 'nothing reached PEMS');
      }
    } finally {
      await sim('DELETE', tenant, '/faults');
    }
  });

  it('filters and pages the queue viewer; text from the data stays text', async () => {
    await modify(10, { model: '<img src=x id=injected>' });
    await page.getByRole('combobox', { name: 'Status' }).selectOption('pending_sync');
    await until('only the pending one', async () => (await modsSection().locator('tbody tr').count()) === 1, 15000);
    await modsSection().locator('.delta').getByText('<img src=x id=injected>').waitFor();
    assert.equal(await page.locator('#injected').count(), 0, 'no element made from the data');
    await page.getByRole('combobox', { name: 'Status' }).selectOption('');
    // a part of the id, in another case
    await page.getByRole('searchbox', { name: 'PFA id' }).fill(PFA(4).toLowerCase());
    await page.getByRole('button', { name: 'Filter' }).click();
    await until('only D-04', async () => (await modsSection().locator('tbody tr').count()) === 1
      && /D-04/.test(await textOf(modsSection().locator('tbody'))), 15000);
    await page.getByRole('searchbox', { name: 'PFA id' }).fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    // 21 modifications in all: a second page
    for (let n = 0; n < 11; n += 1) await modify(11 + (n % 2), { areaSilo: `Page ${n}` });
    await modsSection().getByRole('button', { name: 'Next page' }).click();
    await modsSection().getByText(/21–\d+ of \d+/).waitFor();
    await modsSection().getByRole('button', { name: 'Previous page' }).click();
    await modsSection().getByText(/1–20 of \d+/).waitFor();
    await shot('06-modifications', modsSection());
  });

  // --- issue 24: what the dashboard says is true -------------------------------------------

  it('reads an en-US number as it is shown ("1,750" is 1750), shows it in the preview, and PEMS gets it', async () => {
    const m = await makeConflict(13, { monthlyRate: 1700 }, { monthlyRate: 2000 });
    await until('its row', async () => (await cRow(PFA(13)).count()) === 1, 15000);
    await cRow(PFA(13)).getByRole('button', { name: 'Resolve' }).click();
    const d = dialog();
    await d.waitFor();
    const rate = d.getByRole('group', { name: 'Monthly rate monthlyRate', exact: true });
    assert.match(await textOf(rate), /Local 1,700 PEMS version 2 2,000/);
    const other = rate.getByRole('textbox', { name: 'Other value for Monthly rate' });
    // "1,75" does not read in en-US: refused on its field, nothing sent
    await rate.getByRole('radio', { name: 'Other value' }).check();
    await other.fill('1,75');
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    await rate.locator('.field-error').filter({ hasText: /does not read as a number/ }).waitFor();
    assert.equal(await other.getAttribute('aria-invalid'), 'true');
    assert.equal(await d.locator('#merge-preview').isVisible(), false, 'no preview of a value that does not read');
    await shot('10-en-US-refused-on-its-field', d);
    await other.fill('1,750');
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    assert.deepEqual(JSON.parse(await d.locator('#merge-payload').textContent()),
      { resolution: 'merge', mergedData: { monthlyRate: 1750 } }, 'the preview shows the number sent');
    assert.match(await textOf(d.locator('#merge-words')), /Monthly rate: 1,750/);
    await shot('11-en-US-preview-1750', d);
    await d.getByRole('button', { name: 'Send', exact: true }).click();
    await d.waitFor({ state: 'hidden' });
    await until('the merge written', async () => (await modStatus(m.id)) === 'synced');
    assert.equal((await simRecord(tenant, PFA(13))).data.monthlyRate, 1750);
  });

  it('reads a de-DE number as it is shown ("1.950" is 1950), refuses what does not read, asks once about a far value', async () => {
    const m = await makeConflict(14, { monthlyRate: 1900 }, { monthlyRate: 2000 });
    const de = await newContext({ locale: 'de-DE' });
    const p = await de.newPage();
    watch(p);
    try {
      await p.goto(`${PEMS_URL}/#token=${token}`);
      await p.getByRole('combobox', { name: 'Organization' }).selectOption(org.id);
      const row = p.locator('#conflicts-view').getByRole('row').filter({ hasText: PFA(14) });
      await row.getByRole('button', { name: 'Resolve' }).click();
      const d = dialog(p);
      await d.waitFor();
      const rate = d.getByRole('group', { name: 'Monthly rate monthlyRate', exact: true });
      assert.match(await textOf(rate), /Local 1\.900 PEMS version 2 2\.000/, 'shown the German way');
      const other = rate.getByRole('textbox', { name: 'Other value for Monthly rate' });
      await rate.getByRole('radio', { name: 'Other value' }).check();
      // "1.95" is no German number (a dot groups thousands): refused, not read as 1.95
      await other.fill('1.95');
      await d.getByRole('button', { name: 'Merge', exact: true }).click();
      await rate.locator('.field-error').filter({ hasText: /1\.950,5/ }).waitFor();
      assert.equal(await other.getAttribute('aria-invalid'), 'true');
      assert.equal(await d.locator('#merge-preview').isVisible(), false);
      await shot('12-de-DE-refused-on-its-field', d);
      await axe('resolve dialog de-DE, a value refused', p);
      // "1,95" reads (one point nine five) but is far outside both sides: asked once
      await other.fill('1,95');
      await d.getByRole('button', { name: 'Merge', exact: true }).click();
      await rate.locator('.field-error').filter({ hasText: /far from both Local \(1\.900\) and PEMS \(2\.000\)/ }).waitFor();
      assert.equal(await d.locator('#merge-preview').isVisible(), false, 'asked before any preview');
      await shot('13-de-DE-far-value-asks-once', d);
      await d.getByRole('button', { name: 'Merge', exact: true }).click();
      assert.deepEqual(JSON.parse(await d.locator('#merge-payload').textContent()),
        { resolution: 'merge', mergedData: { monthlyRate: 1.95 } }, 'asked once: the second Merge keeps it');
      // the value meant: 1.950, one thousand nine hundred and fifty
      await other.fill('1.950');
      await d.getByRole('button', { name: 'Merge', exact: true }).click();
      assert.deepEqual(JSON.parse(await d.locator('#merge-payload').textContent()),
        { resolution: 'merge', mergedData: { monthlyRate: 1950 } });
      assert.match(await textOf(d.locator('#merge-words')), /Monthly rate: 1\.950/);
      await shot('14-de-DE-preview-1950', d);
      await d.getByRole('button', { name: 'Send', exact: true }).click();
      await d.waitFor({ state: 'hidden' });
      await until('the merge written', async () => (await modStatus(m.id)) === 'synced');
      assert.equal((await simRecord(tenant, PFA(14))).data.monthlyRate, 1950, 'PEMS holds 1950, not 1.95');
    } finally {
      await de.close();
    }
  });

  it('resolves "PEMS for every field" as Use PEMS: nothing written to PEMS', async () => {
    const m = await makeConflict(15, { monthlyRate: 1500, model: 'Local 15' }, { monthlyRate: 2500, model: 'PEMS 15' });
    const before_ = await simRecord(tenant, PFA(15));
    await until('its row', async () => (await cRow(PFA(15)).count()) === 1, 15000);
    await cRow(PFA(15)).getByRole('button', { name: 'Resolve' }).click();
    const d = dialog();
    await d.waitFor();
    for (const f of ['monthlyRate', 'model']) {
      await d.getByRole('group', { name: `${LABELS[f]} ${f}`, exact: true }).getByRole('radio', { name: 'PEMS', exact: true }).check();
    }
    await d.getByRole('button', { name: 'Merge', exact: true }).click();
    assert.deepEqual(JSON.parse(await d.locator('#merge-payload').textContent()), { resolution: 'use_pems' });
    assert.match(await textOf(d.locator('#merge-words')), /this is Use PEMS, and nothing is written to PEMS/);
    await d.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByRole('status').getByText(`Conflict on ${PFA(15)} resolved: kept PEMS.`).waitFor();
    assert.equal(await modStatus(m.id), 'discarded');
    const after_ = await simRecord(tenant, PFA(15));
    assert.equal(after_.version, before_.version, 'no new PEMS version');
  });

  it('shows open conflicts and failures in the tab title', async () => {
    await makeConflict(16, { monthlyRate: 1600 }, { monthlyRate: 2600 });
    await until('the title to count the open conflicts and failed items', async () => {
      const c = (await apiOk(200, 'GET', `/api/pems/conflicts?organizationId=${org.id}&status=unresolved`, token)).total;
      const f = (await apiOk(200, 'GET', `/api/pems/sync-status?organizationId=${org.id}`, token)).failed;
      const want = [c ? `${c} conflict${c === 1 ? '' : 's'}` : '', f ? `${f} failed` : ''].filter(Boolean).join(', ');
      return c >= 1 && (await page.title()) === `(${want}) pems-sync dashboard`;
    }, 15000);
  });

  it('keeps what was typed in an open dialog through an expiring token and a new sign-in', async () => {
    const c = await conflictOf({ pfaId: PFA(16) });
    const ctx2 = await newContext();
    const p = await ctx2.newPage();
    watch(p);
    try {
      const short = pemsctl('token', '--user', userId, '--ttl', '45');
      await p.goto(`${PEMS_URL}/#token=${short}`);
      await p.getByRole('combobox', { name: 'Organization' }).selectOption(org.id);
      // announced before it ends (here at once: less than five minutes are left)
      await p.getByRole('status').getByText(/Your session ends at \d{1,2}:\d{2}/).waitFor();
      assert.match(await textOf(p.locator('#session-note')), /^Session ends at/);
      const row = p.locator('#conflicts-view').getByRole('row').filter({ hasText: PFA(16) });
      await row.getByRole('button', { name: 'Resolve' }).click();
      const d = dialog(p);
      await d.waitFor();
      const rate = d.getByRole('group', { name: 'Monthly rate monthlyRate', exact: true });
      await rate.getByRole('radio', { name: 'Other value' }).check();
      await rate.getByRole('textbox').fill('2,345');
      const again = p.getByRole('dialog', { name: 'Sign in again' });
      await again.waitFor({ timeout: 60000 });
      assert.ok(await d.isVisible(), 'the dialog stays open');
      assert.equal(await rate.getByRole('textbox').inputValue(), '2,345', 'what was typed is still there');
      await shot('15-token-expired-dialog-kept', p);
      await axe('sign in again over an open dialog', p);
      await again.getByRole('textbox', { name: 'Access token' }).fill(token);
      await again.getByRole('button', { name: 'Sign in' }).click();
      await again.waitFor({ state: 'hidden' });
      assert.equal(await rate.getByRole('textbox').inputValue(), '2,345');
      await d.getByRole('button', { name: 'Merge', exact: true }).click();
      await d.getByRole('button', { name: 'Send', exact: true }).click();
      await d.waitFor({ state: 'hidden' });
      await until('the typed value written to PEMS', async () => (await simRecord(tenant, PFA(16))).data.monthlyRate === 2345);
      const r = await apiOk(200, 'GET', `/api/pems/conflicts?organizationId=${org.id}&status=resolved&limit=500`, token);
      assert.ok(r.conflicts.some((x) => x.id === c.id), 'resolved');
    } finally {
      await ctx2.close();
    }
  });

  it('stays true left open past a scheduled sync: "Next sync" never in the past, and says what it sends', async () => {
    const m = await modify(17, { model: 'Waits for Sync now' });
    const seen = [];
    const first = await textOf(page.locator('#st-last'));
    // the stack's worker runs every minute: watch the figures for longer than that
    const deadline = Date.now() + 75000;
    while (Date.now() < deadline) {
      const next = await textOf(page.locator('#st-next'));
      seen.push(next);
      assert.doesNotMatch(next, /ago/, `"Next sync" in the past: ${next}`);
      assert.match(next, /^due now| in \d+ seconds?,| in 1 minute,/, next);
      assert.match(next, /nothing is queued|sends the \d+ queued item/, 'it says what it sends');
      assert.match(next, /not queued yet wait for Sync now/, 'the waiting edit is named with Sync now');
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.notEqual(await textOf(page.locator('#st-last')), first, 'a scheduled run happened meanwhile');
    assert.equal(await modStatus(m.id), 'pending_sync', 'a scheduled run does not send unqueued edits');
    await shot('16-past-a-scheduled-sync', page.locator('#status-view'));
  });

  it('sends a cancelled draft again with "Send again"', async () => {
    await page.getByRole('searchbox', { name: 'PFA id' }).fill(PFA(9));
    await page.getByRole('button', { name: 'Filter' }).click();
    const r = mRow(PFA(9)).filter({ hasText: 'Draft' });
    await until('the draft with Send again', async () => (await r.getByRole('button', { name: 'Send again' }).count()) === 1, 15000);
    assert.doesNotMatch(await textOf(r), /What will be sent/, 'a draft offers no "What will be sent"');
    await r.getByRole('button', { name: 'Send again' }).click();
    await page.getByRole('status').getByText(`${PFA(9)} queued for PEMS again.`).waitFor();
    await until('the draft written', async () => (await simRecord(tenant, PFA(9))).data.model === 'Never sent');
    await page.getByRole('searchbox', { name: 'PFA id' }).fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
  });

  // --- issue 21: the Records view ----------------------------------------------------------

  const recordsSection = () => page.locator('#records-view');
  const rRow = (text) => recordsSection().getByRole('row').filter({ hasText: text });

  it('lists the records with their sync state; "Search records" finds a part in any case; a filter by state', async () => {
    await page.getByRole('heading', { name: 'Records' }).waitFor();
    const search = page.getByRole('searchbox', { name: 'Search records' });
    await search.fill(PFA(18).toLowerCase());
    await until('only D-18', async () => (await recordsSection().locator('tbody tr').count()) === 1
      && /D-18/.test(await textOf(recordsSection().locator('tbody'))), 15000);
    assert.match(await textOf(rRow(PFA(18))), /In sync/);
    // by class, in another case
    await search.fill('mobile crane');
    await until('every record of that class', async () => /\d+ matching/.test(await textOf(page.locator('#records-count'))), 15000);
    await search.fill('');
    await page.getByRole('combobox', { name: 'Sync state' }).selectOption('conflict');
    const api_ = await apiOk(200, 'GET', `/api/pems/records?organizationId=${org.id}&syncState=conflict`, token);
    await until('the conflicted records', async () =>
      (await recordsSection().locator('tbody tr').count()) === Math.min(api_.total, 20)
      && (api_.total === 0 || /In conflict/.test(await textOf(recordsSection().locator('tbody')))), 15000);
    await page.getByRole('combobox', { name: 'Sync state' }).selectOption('');
    await shot('20-records', recordsSection());
    await axe('records view', page, '#records-view');
  });

  it('edits a record in "Edit record": words for labels, the API\'s messages on their fields and nothing saved, then one modification of what changed', async () => {
    const before_ = await apiOk(200, 'GET', `/api/pems/records/${PFA(18)}?organizationId=${org.id}`, token);
    const search = page.getByRole('searchbox', { name: 'Search records' });
    await search.fill(PFA(18));
    await until('D-18 alone', async () => (await rRow(PFA(18)).count()) === 1, 15000);
    await rRow(PFA(18)).getByRole('button', { name: 'Edit' }).click();
    const d = page.getByRole('dialog', { name: 'Edit record' });
    await d.waitFor();
    const rate = d.getByRole('textbox', { name: 'Monthly rate', exact: true });
    assert.equal(await rate.inputValue(), '12,000', 'holds localData, in the locale');
    assert.equal(await d.getByRole('textbox', { name: 'Area (silo)', exact: true }).inputValue(), RECORD.areaSilo);
    await rate.fill('13,500.5');
    // the API refuses an end before the start: on its field, nothing saved
    const end = d.getByRole('textbox', { name: 'Forecast end', exact: true });
    await end.fill('2025-01-15');
    assert.match(await textOf(d.locator('#edit-preview-words')), /Monthly rate: 12,000 → 13,500\.5; Forecast end: 2025-11-30 → 2025-01-15/);
    await d.getByRole('button', { name: 'Save' }).click();
    await until('the message on Forecast end', async () => (await end.getAttribute('aria-invalid')) === 'true', 15000);
    assert.ok((await textOf(d.locator('.edit-field[data-field="forecastEnd"] .field-error'))).length > 0);
    await shot('21-edit-record-refused-on-its-field', d);
    await axe('edit record dialog, a message on its field');
    const none = await apiOk(200, 'GET', `/api/pems/modifications?organizationId=${org.id}&pfaId=${PFA(18)}`, token);
    assert.equal(none.total, 0, 'nothing saved');
    await end.fill('2025-10-31');
    await d.getByRole('button', { name: 'Save' }).click();
    await d.waitFor({ state: 'hidden' });
    const made = await apiOk(200, 'GET', `/api/pems/modifications?organizationId=${org.id}&pfaId=${PFA(18)}`, token);
    assert.equal(made.total, 1, 'one modification');
    assert.deepEqual(made.modifications[0].delta, { monthlyRate: 13500.5, forecastEnd: '2025-10-31' }, 'of what changed');
    assert.equal(made.modifications[0].baseVersion, before_.version, 'on the current version');
    await until('the record waiting to be sent', async () => /Waiting to be sent/.test(await textOf(rRow(PFA(18)))), 15000);
  });

  it('edits in de-DE: "12.500" is twelve thousand five hundred', async () => {
    const de = await newContext({ locale: 'de-DE' });
    const p = await de.newPage();
    watch(p);
    try {
      await p.goto(`${PEMS_URL}/#token=${token}`);
      await p.getByRole('combobox', { name: 'Organization' }).selectOption(org.id);
      await p.getByRole('searchbox', { name: 'Search records' }).fill(PFA(19));
      const row = p.locator('#records-view').getByRole('row').filter({ hasText: PFA(19) });
      await until('D-19', async () => (await row.count()) === 1, 15000);
      await row.getByRole('button', { name: 'Edit' }).click();
      const d = p.getByRole('dialog', { name: 'Edit record' });
      const rate = d.getByRole('textbox', { name: 'Monthly rate', exact: true });
      assert.equal(await rate.inputValue(), '12.000');
      await rate.fill('12.50');
      await d.getByRole('button', { name: 'Save' }).click();
      await until('refused on its field', async () => (await rate.getAttribute('aria-invalid')) === 'true', 5000);
      await rate.fill('12.500');
      await d.getByRole('button', { name: 'Save' }).click();
      await d.waitFor({ state: 'hidden' });
      const made = await apiOk(200, 'GET', `/api/pems/modifications?organizationId=${org.id}&pfaId=${PFA(19)}`, token);
      assert.deepEqual(made.modifications[0].delta, { monthlyRate: 12500 });
    } finally {
      await de.close();
    }
  });

  it('shows a record\'s history newest first, with time, what happened and who', async () => {
    await rRow(PFA(18)).getByRole('button', { name: 'History' }).click();
    const d = page.getByRole('dialog', { name: 'Record history' });
    await d.waitFor();
    const items = d.getByRole('listitem');
    await until('the events', async () => (await items.count()) >= 1, 15000);
    const first = await textOf(items.first());
    assert.match(first, new RegExp(`Local edit of (Monthly rate, Forecast end|Forecast end, Monthly rate).*by ${username}`), first);
    const times = await d.locator('time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')));
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    await shot('22-record-history', d);
    await axe('record history dialog');
    await page.keyboard.press('Escape');
    await d.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.dataset.focusKey), `rhist-${PFA(18)}`, 'focus back on History');
    await page.getByRole('searchbox', { name: 'Search records' }).fill('');
  });

  it('links a conflict to its record', async () => {
    await makeConflict(20, { monthlyRate: 2020 }, { monthlyRate: 3030 });
    await until('its row', async () => (await cRow(PFA(20)).count()) === 1, 15000);
    await cRow(PFA(20)).getByRole('link', { name: `${PFA(20)}: show record` }).click();
    await until('the record alone in Records', async () => (await recordsSection().locator('tbody tr').count()) === 1
      && /In conflict/.test(await textOf(rRow(PFA(20)))), 15000);
    assert.equal(await page.getByRole('searchbox', { name: 'Search records' }).inputValue(), PFA(20));
    await page.getByRole('searchbox', { name: 'Search records' }).fill('');
  });

  it('fixes a refused change in place: "Edit" on the failed item opens "Edit record" with the refused value', async () => {
    await sim('POST', tenant, '/faults', { pfaId: PFA(10), status: 400, count: 1 });
    const m = await modify(10, { forecastEnd: '2025-11-29' });
    await apiOk(202, 'POST', '/api/pems/write-sync', token, { organizationId: org.id, modificationIds: [m.id] });
    await until('the write to fail for good', async () => (await modStatus(m.id)) === 'sync_error');
    await page.getByRole('searchbox', { name: 'PFA id' }).fill(PFA(10));
    await page.getByRole('button', { name: 'Filter' }).click();
    const r = mRow(PFA(10)).filter({ hasText: 'Sync error' });
    await until('the failed row', async () => (await r.count()) === 1, 15000);
    await r.getByRole('button', { name: 'Edit' }).click();
    const d = page.getByRole('dialog', { name: 'Edit record' });
    await d.waitFor();
    const end = d.getByRole('textbox', { name: 'Forecast end', exact: true });
    assert.equal(await end.inputValue(), '2025-11-29', 'holds the refused value');
    assert.match(await textOf(d.locator('#edit-sub')), /PEMS refused/);
    await shot('23-edit-refused-change', d);
    await end.fill('2025-11-28');
    await d.getByRole('button', { name: 'Save' }).click();
    await d.waitFor({ state: 'hidden' });
    const mods = await apiOk(200, 'GET', `/api/pems/modifications?organizationId=${org.id}&pfaId=${PFA(10)}&status=pending_sync`, token);
    assert.ok(mods.modifications.some((x) => x.delta.forecastEnd === '2025-11-28'), 'the corrected change is made');
    assert.equal(await modStatus(m.id), 'discarded', 'it replaces the refused one');
    const rec = await apiOk(200, 'GET', `/api/pems/records/${PFA(10)}?organizationId=${org.id}`, token);
    assert.equal(rec.localData.forecastEnd, '2025-11-28', 'the record shows the correction');
    assert.ok(!rec.pendingModifications.includes(m.id), 'the refused change no longer lies over it');
    await page.getByRole('searchbox', { name: 'PFA id' }).fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
  });

  it('passes axe on the whole dashboard at 1280x800', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('07-dashboard-1280x800');
    await axe('dashboard 1280x800');
  });

  it('shows "Sync now" only with the Sync permission', async () => {
    await page.getByRole('combobox', { name: 'Organization' }).selectOption(orgB.id);
    await page.getByText('Your role can watch the sync but not start one').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sync now' }).count(), 0);
    // an organization with nothing yet: empty states that say what happens next
    await conflictsSection().getByText(/^No unresolved conflicts\. Nothing needs you here\./).waitFor();
    await modsSection().getByText(/^No local modifications yet\./).waitFor();
    // the reason behind unhealthy: its PEMS server failing the health check
    psql(`INSERT INTO api_servers (organization_id, base_url, credentials_enc, health_ok, health_error, health_checked_at)
          VALUES ('${orgB.id}', 'http://127.0.0.1:9/', '\\x00', false, 'HTTP 503: Service Unavailable', now())`);
    try {
      await until('the reason beside unhealthy', async () =>
        /^Health: unhealthy — PEMS health check failing: .+ \(checked \d{1,2}:\d{2}/.test(await textOf(page.locator('#health'))), 15000);
      await shot('17-unhealthy-with-its-reason', page.locator('#status-view .section-head'));
    } finally {
      psql(`DELETE FROM api_servers WHERE organization_id = '${orgB.id}'`);
    }
    await page.getByRole('combobox', { name: 'Organization' }).selectOption(org.id);
    await page.getByRole('button', { name: 'Sync now' }).waitFor();
  });

  it('at phone width in another locale: readable, numbers and dates in that locale, axe clean', async () => {
    const phone = await newContext({ viewport: { width: 390, height: 844 }, locale: 'de-DE', isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    watch(p);
    await p.goto(`${PEMS_URL}/#token=${token}`);
    await p.getByRole('combobox', { name: 'Organization' }).selectOption(org.id);
    await p.getByRole('heading', { name: 'Modifications' }).waitFor();
    await until('the last sync in German', async () => /\d{1,2}\.\d{1,2}\.\d{4}/.test(await textOf(p.locator('#st-last'))), 15000);
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling (page is ${width}px wide)`);
    await shot('08-phone', p);
    await axe('dashboard 390x844 de-DE', p);
    await phone.close();
  });

  it('says what is wrong and what to do while the database is down, and recovers by itself', async () => {
    await page.getByRole('heading', { name: 'Sync status' }).waitFor();
    stack('db-stop');
    try {
      const error = page.locator('#app-error');
      await until('the error state', async () =>
        /not answering properly .*keeps trying every few seconds/.test(await textOf(error)), 30000);
      assert.equal(await error.getAttribute('role'), 'alert');
      // no stale "healthy": the badge says since when the service is silent, the figures as of when
      await until('the health badge to say the service is silent', async () =>
        /^Not answering since \d{1,2}:\d{2}/.test(await textOf(page.locator('#health'))), 15000);
      assert.doesNotMatch(await textOf(page.locator('#status-view')), /healthy/);
      assert.match(await textOf(page.locator('#status-note')), /as of \d{1,2}:\d{2}/);
      assert.equal(await textOf(page.locator('#st-next')), 'unknown the service is not answering');
      await shot('09-service-down', page.locator('main'));
      await axe('service down');
    } finally {
      stack('db-start');
    }
    await page.locator('#app-error').waitFor({ state: 'hidden', timeout: 30000 });
    await until('the health badge back', async () => /^Health: /.test(await textOf(page.locator('#health'))), 15000);
    assert.equal(await page.locator('#status-note').isVisible(), false);
  });

  it('shows the sign-in view again on a 401, and signs in with the paste field', async () => {
    // a token of the right shape that the server refuses (signed with another key)
    const [h, claims] = token.split('.');
    await page.evaluate((t) => sessionStorage.setItem('pems.token', t), `${h}.${claims}.AAAA`);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText(/token was refused \(HTTP 401\)/).waitFor();
    await page.getByRole('textbox', { name: 'Access token' }).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Conflicts' }).waitFor();
    // an expired token is refused before it is sent
    const expired = pemsctl('token', '--user', userId, '--ttl', '1');
    await new Promise((r) => setTimeout(r, 2100));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('textbox', { name: 'Access token' }).fill(expired);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This token has expired. Ask for a fresh one.').waitFor();
  });

  it('broke no Content-Security-Policy rule, put the token in no URL and in no log line', async () => {
    assert.deepEqual(cspViolations, []);
    for (const u of requestedUrls) assert.ok(!u.includes(token), `token in ${u}`);
    // nginx's access log is buffered (flush=5s); then every log of the stack
    await new Promise((r) => setTimeout(r, 6000));
    const logDir = path.join(process.env.STACK_DIR, 'log');
    const files = readdirSync(logDir).filter((f) => statSync(path.join(logDir, f)).isFile());
    assert.ok(files.some((f) => f.startsWith('nginx')), `nginx logs among ${files}`);
    for (const f of files) {
      assert.ok(!readFileSync(path.join(logDir, f), 'latin1').includes(token.split('.')[2]), `token in ${f}`);
    }
  });
});
