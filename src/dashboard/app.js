// The dashboard's entry point: sign-in (and signing in again without losing an open dialog),
// the organization picker, polling, the tab's title, and the four views.
import { Api, ApiError, session, tokenClaims, tokenExpired } from './api.js';
import { $, h, setText } from './dom.js';
import { toast } from './toast.js';
import { StatusView } from './status.js';
import { ConflictsView } from './conflicts.js';
import { ModificationsView } from './modifications.js';
import { RecordsView } from './records.js';
import { initConfirm } from './confirm.js';
import { fmtTime } from './format.js';

const POLL_MS = 4000;
const ORG_KEY = 'pems.org';
const WARN_BEFORE_MS = 5 * 60 * 1000;
const TITLE = 'pems-sync dashboard';
// the dialogs whose typed contents a new sign-in must not lose
const WORK_DIALOGS = ['resolve-dialog', 'edit-dialog', 'history-dialog', 'confirm-dialog'];

const api = new Api(() => sessionEnded('Your session has ended: the token was refused (HTTP 401).'));

const ctx = {
  api,
  toast,
  orgs: [],
  org: null,
  // the API lists the effective permissions (GET /organizations: an Admin has all four)
  can(perm) {
    return Boolean(this.org && this.org.permissions && this.org.permissions.includes(perm));
  },
  refreshSoon() {
    schedule(300);
  },
  showError,
  openConflicts() {
    return views[1] ? views[1].total || 0 : 0;
  },
  // the tab's title shows what needs a planner: open conflicts and failed items
  titleChanged(part) {
    Object.assign(titleState, part);
    const bits = [];
    if (titleState.conflicts) bits.push(`${titleState.conflicts} conflict${titleState.conflicts === 1 ? '' : 's'}`);
    if (titleState.failed) bits.push(`${titleState.failed} failed`);
    document.title = bits.length ? `(${bits.join(', ')}) ${TITLE}` : TITLE;
  },
  editRecord(pfaId, preset) {
    return views[3].openEdit(pfaId, preset);
  },
  showHistory(pfaId, opener) {
    return views[3].openHistory(pfaId, opener);
  },
  showRecord(pfaId) {
    return views[3].show(pfaId);
  },
};
const titleState = { conflicts: 0, failed: 0 };

const views = [];
let pollTimer = 0;
let polling = false;
let expiryTimer = 0;
let warnTimer = 0;
let running = false;

function showError(err) {
  const box = $('app-error');
  if (!err) {
    box.hidden = true;
    setText(box, '');
    return;
  }
  if (err instanceof ApiError && (err.status === 0 || err.status >= 500)) views[0].markOffline(err);
  const what = err instanceof ApiError && err.status === 0 ? err.message
    : err instanceof ApiError && err.status >= 500
      ? `The service is not answering properly (${err.message}). The page keeps trying every few seconds.`
      : err.message || String(err);
  setText(box, what);
  box.hidden = false;
}

function showSignin(reason) {
  running = false;
  clearTimeout(pollTimer);
  clearTimeout(expiryTimer);
  clearTimeout(warnTimer);
  $('session-note').hidden = true;
  $('loading').hidden = true;
  $('app').hidden = true;
  $('org-picker').hidden = true;
  $('views-nav').hidden = true;
  $('sign-out').hidden = true;
  $('who').hidden = true;
  for (const id of [...WORK_DIALOGS, 'resign-dialog']) if ($(id).open) $(id).close();
  document.title = TITLE;
  setText($('signin-reason'), reason || '');
  $('signin').hidden = false;
  $('token-input').value = '';
  $('token-input').focus();
}

function signOut(reason) {
  session.clear();
  api.reset();
  showSignin(reason);
}

// The session ended (the token expired or was refused). With a dialog open, what was typed in
// it stays: a "Sign in again" dialog opens on top of it, and the work goes on after.
function sessionEnded(why) {
  const open = WORK_DIALOGS.some((id) => $(id).open);
  if (!open || !running) {
    signOut(`${why} Sign in again with a fresh token.`);
    return;
  }
  const dlg = $('resign-dialog');
  if (dlg.open) return;
  running = false;
  clearTimeout(pollTimer);
  clearTimeout(expiryTimer);
  clearTimeout(warnTimer);
  session.clear();
  resignBack = document.activeElement;
  setText($('resign-why'), `${why} What you typed is kept: paste a fresh token to go on where you were.`);
  $('resign-error').hidden = true;
  $('resign-token').value = '';
  dlg.showModal();
  $('resign-token').focus();
}
let resignBack = null;

function armExpiry(claims) {
  clearTimeout(expiryTimer);
  clearTimeout(warnTimer);
  $('session-note').hidden = true;
  // setTimeout holds at most ~24.8 days
  const left = Math.min(claims.exp * 1000 - Date.now(), 2147483000);
  expiryTimer = setTimeout(() => sessionEnded(`Your session ended at ${fmtTime(claims.exp * 1000)}.`), left);
  warnTimer = setTimeout(() => {
    const mins = Math.max(1, Math.round((claims.exp * 1000 - Date.now()) / 60000));
    const text = `Your session ends at ${fmtTime(claims.exp * 1000)} (in about ${mins} minute${mins === 1 ? '' : 's'}). `
      + 'Save what you are editing, or sign in again then: nothing typed in an open dialog is lost.';
    setText($('session-note'), `Session ends at ${fmtTime(claims.exp * 1000)}`);
    $('session-note').hidden = false;
    toast(text, 'warn');
  }, Math.max(0, left - WARN_BEFORE_MS));
}

function signIn(token) {
  session.set(token);
  api.reset();
  start();
}

async function start() {
  const token = session.token;
  if (!token) return showSignin('');
  if (tokenExpired(token)) {
    session.clear();
    return showSignin('Your token has expired. Sign in again with a fresh one.');
  }
  const claims = tokenClaims(token);
  armExpiry(claims);

  $('signin').hidden = true;
  $('loading').hidden = false;
  let orgs;
  let user = null;
  try {
    const r = (await api.get('/organizations')).data;
    orgs = r.organizations || [];
    user = r.user || null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    $('loading').hidden = true;
    $('app').hidden = false;
    showError(new Error(`Your organizations could not be loaded: ${err.message}. Reload the page to try again.`));
    return;
  }
  $('loading').hidden = true;
  if (orgs.length === 0) {
    return signOut('This account is not a member of any organization yet. Ask your administrator to add you to one, then sign in again.');
  }
  ctx.orgs = orgs;
  const select = $('org');
  // each organization by its name; its code is added only where two share a name
  const names = orgs.map((o) => o.name);
  select.replaceChildren(...orgs.map((o) => h('option', { value: o.id },
    names.indexOf(o.name) === names.lastIndexOf(o.name) ? o.name : `${o.name} (${o.code})`)));
  const saved = sessionStorage.getItem(ORG_KEY);
  const chosen = orgs.find((o) => o.id === saved) || orgs[0];
  select.value = chosen.id;
  $('org-picker').hidden = false;
  $('views-nav').hidden = false;
  $('sign-out').hidden = false;
  setText($('who'), user && user.username
    ? `Signed in as ${user.username}${user.email ? ` (${user.email})` : ''}`
    : `Signed in (${orgs.length} organization${orgs.length === 1 ? '' : 's'})`);
  $('who').hidden = false;
  $('app').hidden = false;
  running = true;
  selectOrg(chosen);
}

function selectOrg(org) {
  ctx.org = org;
  sessionStorage.setItem(ORG_KEY, org.id);
  showError(null);
  // the views start empty again: every first answer must be a full one, not a 304
  api.reset();
  for (const v of views) v.reset();
  schedule(0);
}

function schedule(ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, ms);
}

async function poll() {
  if (!running) return;
  if (polling) return schedule(200);
  polling = true;
  const org = ctx.org;
  try {
    const results = await Promise.allSettled(views.map((v) => v.refresh()));
    if (org !== ctx.org || !running) return;
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && !(failed.reason instanceof ApiError && failed.reason.status === 401)) showError(failed.reason);
    else if (!failed) showError(null);
  } finally {
    polling = false;
    if (running) schedule(document.hidden ? POLL_MS * 5 : POLL_MS);
  }
}

function init() {
  views.push(new StatusView(ctx), new ConflictsView(ctx), new ModificationsView(ctx), new RecordsView(ctx));
  initConfirm();

  $('resign-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('resign-token');
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    const problem = !token ? 'Paste a token first.'
      : !tokenClaims(token) ? 'This is not an access token: paste the whole token from your sign-in link.'
        : tokenExpired(token) ? 'This token has expired too. Ask for a fresh one.' : '';
    if (problem) {
      setText($('resign-error'), problem);
      $('resign-error').hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    session.set(token);
    armExpiry(tokenClaims(token));
    $('resign-dialog').close();
    running = true;
    toast('Signed in again. Nothing you typed was lost.');
    if (resignBack && resignBack.isConnected) resignBack.focus();
    schedule(0);
  });
  $('resign-out').addEventListener('click', () => signOut('You signed out.'));
  // Esc does not drop the session's last chance to keep the work: the dialog stays
  $('resign-dialog').addEventListener('cancel', (e) => e.preventDefault());

  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('token-input');
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    const err = $('token-error');
    let problem = '';
    if (!token) problem = 'Paste a token first.';
    else if (!tokenClaims(token)) problem = 'This is not a token: a JWT has three parts separated by dots.';
    else if (tokenExpired(token)) problem = 'This token has expired. Ask for a fresh one.';
    if (problem) {
      setText(err, problem);
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    err.hidden = true;
    input.removeAttribute('aria-invalid');
    signIn(token);
  });
  $('sign-out').addEventListener('click', () => signOut('You signed out.'));
  $('org').addEventListener('change', (e) => {
    const org = ctx.orgs.find((o) => o.id === e.target.value);
    if (org) selectOrg(org);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && running) schedule(0);
  });
  // in-page links move focus to the view they name
  $('views-nav').addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    const target = document.getElementById(a.getAttribute('href').slice(1));
    if (!target) return;
    e.preventDefault();
    target.scrollIntoView({ block: 'start' });
    target.focus({ preventScroll: true });
  });

  // a link with #token= opened in a tab that already shows the page changes only the fragment
  window.addEventListener('hashchange', () => {
    const t = session.takeFromFragment();
    if (t) signIn(t);
  });

  const fromFragment = session.takeFromFragment();
  if (fromFragment) session.set(fromFragment);
  start();
}

init();
