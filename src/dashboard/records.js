// "Records": the organization's PFA records as the planner sees them (GET /records: PEMS's data
// with the open local edits laid over it) and where each stands with PEMS; a search box and a
// filter by state; per record "Edit" (the "Edit record" dialog: one modification of what
// changed, on the record's current version) and "History" (the "Record history" dialog).
import { ApiError, query } from './api.js';
import { $, h, newId, replaceChildren, setText } from './dom.js';
import { fmtDateTime, fmtNumber, fmtValue } from './format.js';
import { FIELD_ORDER, farOutside, fieldHint, fieldLabel, fromInput, kindOf, toInput } from './fields.js';

const LIMIT = 20;
const STATE_WORDS = {
  in_sync: 'In sync', pending: 'Waiting to be sent', conflict: 'In conflict', error: 'Refused by PEMS',
};
const STATE_TAGS = { in_sync: 'synced', pending: 'pending_sync', conflict: 'conflict', error: 'sync_error' };
const RESOLUTION_WORDS = { use_local: 'the local edit kept', use_pems: "PEMS's values kept", merge: 'merged field by field' };

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function fieldNames(fields) {
  if (Array.isArray(fields)) return fields.map(fieldLabel).join(', ');
  if (fields && typeof fields === 'object') return Object.keys(fields).map(fieldLabel).join(', ');
  return '';
}

// one history event in words: [what happened, who]
export function describeEvent(e) {
  const by = e.by && (e.by.username || e.by.email);
  switch (e.kind) {
    case 'pems_version':
      return [e.fields ? `PEMS made version ${e.version}, changing ${fieldNames(e.fields) || 'no field'}`
        : `PEMS's version ${e.version}, the first one seen here`, 'PEMS'];
    case 'local_edit':
      return [e.operation === 'delete' ? 'Local delete' : `Local edit of ${fieldNames(e.fields) || 'no field'}`, by || 'a planner'];
    case 'synced':
      return [`Sent to PEMS, which made version ${e.version}`, 'pems-sync'];
    case 'conflict':
      return [`Conflict: PEMS changed ${fieldNames(e.fields) || 'the same fields'} too`, 'pems-sync'];
    case 'resolved':
      return [`Conflict resolved: ${RESOLUTION_WORDS[e.resolution] || e.resolution}`, by || 'a planner'];
    case 'failed':
      return [`PEMS refused it${e.httpStatus ? ` (HTTP ${e.httpStatus})` : ''}${e.error ? `: ${e.error}` : ''}`, 'PEMS'];
    default: {
      const words = String(e.kind || 'event').replace(/_/g, ' ');
      const extra = e.httpStatus ? ` (HTTP ${e.httpStatus})` : '';
      return [`${words.charAt(0).toUpperCase()}${words.slice(1)}${extra}${e.error ? `: ${e.error}` : ''}`, by || 'pems-sync'];
    }
  }
}

export class RecordsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.reset();
    $('records-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      this.applyFilter();
    });
    $('records-state').addEventListener('change', () => this.applyFilter());
    let typing = 0;
    $('records-q').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.applyFilter(), 300);
    });
    this.editDialog = $('edit-dialog');
    this.historyDialog = $('history-dialog');
    $('edit-close').addEventListener('click', () => this.editDialog.close());
    $('history-close').addEventListener('click', () => this.historyDialog.close());
    $('edit-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    $('edit-form').addEventListener('input', () => this.preview());
    this.editDialog.addEventListener('close', () => this.afterClose(this.editOpener));
    this.historyDialog.addEventListener('close', () => this.afterClose(this.historyOpener));
  }

  reset() {
    this.filter = { q: '', syncState: '' };
    this.cursors = [null]; // the cursor of each page seen, for "Previous page"
    this.page = 0;
    this.items = [];
    this.total = undefined;
    this.renderedPath = null;
    this.missingAt = 0;
    replaceChildren($('records-body'), h('p', { class: 'loading' }, 'Loading records…'));
    replaceChildren($('records-pager'));
  }

  applyFilter() {
    const f = { q: $('records-q').value.trim(), syncState: $('records-state').value };
    if (f.q === this.filter.q && f.syncState === this.filter.syncState) return;
    this.filter = f;
    this.cursors = [null];
    this.page = 0;
    this.ctx.refreshSoon();
  }

  // from elsewhere (a conflict's "show record"): the record alone, in view
  show(pfaId) {
    $('records-q').value = pfaId;
    $('records-state').value = '';
    this.filter = { q: '', syncState: '' };
    this.applyFilter();
    const view = $('records-view');
    view.scrollIntoView({ block: 'start' });
    view.focus({ preventScroll: true });
  }

  path() {
    return `/records${query({ organizationId: this.ctx.org.id, q: this.filter.q, syncState: this.filter.syncState,
      limit: LIMIT, cursor: this.cursors[this.page] })}`;
  }

  async refresh() {
    const org = this.ctx.org;
    const path = this.path();
    // a service without the route is asked again once a minute, not at every poll
    if (this.missingAt && path === this.renderedPath && Date.now() - this.missingAt < 60000) return;
    this.missingAt = 0;
    let res;
    try {
      res = await this.ctx.api.get(path);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 400 || err.status === 404)) {
        this.renderedPath = path;
        if (err.status === 404) this.missingAt = Date.now();
        replaceChildren($('records-body'), h('p', { class: 'empty' }, err.status === 404
          ? 'This service does not list records yet (GET /api/pems/records answered 404).'
          : [h('strong', {}, 'This search is not accepted: '), `${err.message}. Change it and press Search.`]));
        return;
      }
      throw err;
    }
    const { data, changed } = res;
    if (org !== this.ctx.org || path !== this.path()) return;
    if (!changed && path === this.renderedPath) return;
    this.renderedPath = path;
    this.items = Array.isArray(data.records) ? data.records : [];
    this.total = data.total;
    this.cursors[this.page + 1] = data.nextCursor || undefined;
    this.render();
  }

  render() {
    const filtered = this.filter.q || this.filter.syncState;
    setText($('records-count'), this.total === undefined ? '' : `${fmtNumber(this.total)} ${filtered ? 'matching' : 'in all'}`);
    if (!this.items.length) {
      replaceChildren($('records-body'), h('p', { class: 'empty' }, filtered
        ? [h('strong', {}, 'No record matches. '), 'Clear Search records and set Sync state to “Any state” to see them all.']
        : [h('strong', {}, 'No records yet. '), 'They appear once pems-sync has pulled them from PEMS (every scheduled run).']));
      replaceChildren($('records-pager'));
      return;
    }
    const canWrite = this.ctx.can('Write');
    const rows = this.items.map((r) => {
      const cell = newId('rec');
      const d = r.localData || r.data || {};
      const state = r.syncState;
      return h('tr', {},
        h('th', { scope: 'row', 'data-label': 'PFA record', id: cell }, h('strong', {}, r.pfaId),
          h('div', { class: 'hint' }, [d.category, d.class].filter(Boolean).join(' · '))),
        h('td', { 'data-label': 'Sync state' }, h('span', { class: `status-tag ${STATE_TAGS[state] || ''}` }, STATE_WORDS[state] || state),
          r.localData === null ? h('div', { class: 'hint' }, 'a delete waits to be sent') : null,
          (r.pendingModifications || []).length
            ? h('div', { class: 'hint' }, `${fmtNumber(r.pendingModifications.length)} open local change${r.pendingModifications.length === 1 ? '' : 's'}`) : null),
        h('td', { 'data-label': 'Monthly rate', class: 'num' }, fmtValue(d.monthlyRate)),
        h('td', { 'data-label': 'Forecast' }, d.forecastStart || d.forecastEnd ? `${d.forecastStart || '…'} to ${d.forecastEnd || '…'}` : '—'),
        h('td', { 'data-label': 'PEMS version' }, `version ${r.version}`, h('div', { class: 'hint' }, fmtDateTime(r.updatedAt))),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' },
          canWrite && r.localData !== null ? h('button', { type: 'button', 'aria-describedby': cell,
            dataset: { focusKey: `redit-${r.pfaId}` }, onclick: (e) => this.openEdit(r.pfaId, {}, e.currentTarget) }, 'Edit') : null,
          h('button', { type: 'button', 'aria-describedby': cell, dataset: { focusKey: `rhist-${r.pfaId}` },
            onclick: (e) => this.openHistory(r.pfaId, e.currentTarget) }, 'History'))));
    });
    replaceChildren($('records-body'), h('div', { class: 'table-wrap' },
      h('table', { class: 'stack' }, h('caption', { class: 'visually-hidden' }, 'Records, by PFA id'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'PFA record'), h('th', { scope: 'col' }, 'Sync state'),
          h('th', { scope: 'col', class: 'num' }, 'Monthly rate'), h('th', { scope: 'col' }, 'Forecast'),
          h('th', { scope: 'col' }, 'PEMS version'), h('th', { scope: 'col' }, 'Actions'))),
        h('tbody', {}, rows))));
    this.renderPager();
  }

  renderPager() {
    const pager = $('records-pager');
    const more = this.cursors[this.page + 1];
    if (this.page === 0 && !more) return replaceChildren(pager);
    const from = this.page * LIMIT + 1;
    replaceChildren(pager,
      h('button', { type: 'button', disabled: this.page === 0, dataset: { focusKey: 'r-prev' },
        onclick: () => { this.page -= 1; this.ctx.refreshSoon(); } }, 'Previous page'),
      h('span', {}, `${fmtNumber(from)}–${fmtNumber(from + this.items.length - 1)} of ${fmtNumber(this.total)}`),
      h('button', { type: 'button', disabled: !more, dataset: { focusKey: 'r-next' },
        onclick: () => { this.page += 1; this.ctx.refreshSoon(); } }, 'Next page'));
  }

  recordPath(pfaId, tail = '') {
    return `/records/${encodeURIComponent(pfaId)}${tail}${query({ organizationId: this.ctx.org.id })}`;
  }

  // --- Edit record ------------------------------------------------------------------------

  // preset.replaces: a modification PEMS refused; its values fill the boxes, to be fixed
  async openEdit(pfaId, preset = {}, opener = document.activeElement) {
    let rec;
    try {
      rec = (await this.ctx.api.get(this.recordPath(pfaId))).data;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) this.ctx.toast(`${pfaId} could not be opened: ${err.message}`, 'error');
      return;
    }
    this.editOpener = opener;
    this.record = rec;
    this.replaces = preset.replaces || null;
    this.askedFar = new Map();
    const shown = { ...(rec.localData || rec.data || {}) };
    if (this.replaces && this.replaces.delta) Object.assign(shown, this.replaces.delta);
    this.shown = shown;
    const keys = [...FIELD_ORDER];
    for (const k of Object.keys(rec.data || {})) if (!keys.includes(k)) keys.push(k);
    const q = this.replaces && this.replaces.queueItem;
    setText($('edit-sub'), this.replaces
      ? `${pfaId}: PEMS refused the change made on version ${this.replaces.baseVersion}${q && q.lastError ? ` (${q.lastError})` : ''}. `
        + 'The refused values are below: correct them and Save; the new change is made on PEMS\'s current version '
        + `(${rec.version}) and replaces the refused one.`
      : `${pfaId}, as you see it (PEMS's version ${rec.version} with the open local changes). Change what you need and Save: `
        + 'one change of what differs is made on the current version, then sent at the next sync.');
    $('edit-error').hidden = true;
    replaceChildren($('edit-fields'), keys.map((k) => this.fieldRow(k, shown[k])));
    this.preview();
    this.setBusy(false);
    this.editDialog.showModal();
    const first = this.replaces && this.replaces.delta
      ? this.editDialog.querySelector(`input[data-field="${CSS.escape(Object.keys(this.replaces.delta)[0])}"]`) : null;
    (first || this.editDialog.querySelector('input[data-field]')).focus();
  }

  fieldRow(key, value) {
    const id = newId('ef');
    const hint = `${id}-hint`;
    const err = `${id}-err`;
    return h('div', { class: 'edit-field', dataset: { field: key } },
      h('label', { for: id }, fieldLabel(key)),
      h('input', { type: 'text', id, value: toInput(key, value), dataset: { field: key }, autocomplete: 'off',
        spellcheck: 'false', inputmode: kindOf(key) === 'number' ? 'decimal' : undefined, 'aria-describedby': `${hint} ${err}` }),
      h('span', { class: 'hint', id: hint }, h('code', { class: 'key' }, key), ` · ${fieldHint(key)}`),
      h('p', { class: 'field-error', id: err, hidden: true }));
  }

  // what changed, read as typed: {delta, errors, far}
  readDelta() {
    const delta = {};
    const errors = [];
    const far = [];
    for (const input of this.editDialog.querySelectorAll('input[data-field]')) {
      const key = input.dataset.field;
      const before = (this.record.localData || this.record.data || {})[key];
      const r = fromInput(key, input.value);
      if (r.error) {
        if (input.value.trim() !== toInput(key, before)) errors.push([key, r.error]);
        continue;
      }
      // a correction replaces the refused change: every field of it goes into the new one
      const corrected = this.replaces && this.replaces.delta && key in this.replaces.delta;
      if (same(r.value, before) && !corrected) continue;
      if (typeof r.value === 'number' && farOutside(r.value, before, (this.record.data || {})[key])
        && this.askedFar.get(key) !== r.value) far.push([key, r.value]);
      delta[key] = r.value;
    }
    return { delta, errors, far };
  }

  preview() {
    const { delta, errors } = this.readDelta();
    const keys = Object.keys(delta);
    setText($('edit-preview-words'), errors.length
      ? `Not readable yet: ${errors.map(([k]) => fieldLabel(k)).join(', ')}.`
      : keys.length ? keys.map((k) => `${fieldLabel(k)}: ${fmtValue((this.record.localData || {})[k])} → ${fmtValue(delta[k])}`).join('; ')
        : 'Nothing changed yet.');
    setText($('edit-payload'), keys.length ? `POST /api/pems/modifications\n${JSON.stringify(this.body(delta), null, 2)}` : '');
    $('edit-payload').hidden = !keys.length;
  }

  body(delta) {
    const b = { organizationId: this.ctx.org.id, pfaId: this.record.pfaId, operation: 'update', baseVersion: this.record.version, delta };
    if (this.replaces) b.replaces = this.replaces.id;
    return b;
  }

  fieldError(key, message) {
    const box = this.editDialog.querySelector(`.edit-field[data-field="${CSS.escape(key)}"]`);
    if (!box) return false;
    const p = box.querySelector('.field-error');
    setText(p, message);
    p.hidden = !message;
    const input = box.querySelector('input');
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    return true;
  }

  clearErrors() {
    for (const box of this.editDialog.querySelectorAll('.edit-field')) this.fieldError(box.dataset.field, '');
    $('edit-error').hidden = true;
  }

  showError(message) {
    setText($('edit-error'), message);
    $('edit-error').hidden = false;
  }

  setBusy(busy) {
    $('edit-save').disabled = busy;
  }

  focusInvalid() {
    const bad = this.editDialog.querySelector('input[aria-invalid="true"]');
    if (bad) bad.focus();
  }

  async save() {
    if (!this.record) return;
    this.clearErrors();
    const { delta, errors, far } = this.readDelta();
    if (errors.length) {
      for (const [k, why] of errors) this.fieldError(k, `${fieldLabel(k)} ${why}.`);
      this.showError('Nothing saved: the fields marked say what does not read.');
      return this.focusInvalid();
    }
    if (far.length) {
      for (const [k, v] of far) {
        this.askedFar.set(k, v);
        this.fieldError(k, `${fmtValue(v)} is far from the value now (${fmtValue((this.record.localData || {})[k])}) and from PEMS's `
          + `(${fmtValue((this.record.data || {})[k])}). Check it; press Save again to keep it.`);
      }
      this.showError('Nothing saved yet: one value is far outside what the record holds. Check it, then press Save again.');
      return this.focusInvalid();
    }
    if (!Object.keys(delta).length) {
      this.showError('Nothing changed: there is nothing to save.');
      return;
    }
    this.setBusy(true);
    try {
      const body = this.body(delta);
      const created = await this.ctx.api.post('/modifications', body);
      const pfaId = this.record.pfaId;
      this.editOpener = this.nextAfter(pfaId);
      this.editDialog.close();
      this.ctx.toast(`${pfaId}: change saved (${Object.keys(delta).map(fieldLabel).join(', ')})${this.replaces ? ', in place of the refused one' : ''}; `
        + `${created && created.status === 'pending_sync' ? 'Sync now or the next scheduled sync sends it' : 'saved'}.`);
      this.ctx.refreshSoon();
    } catch (err) {
      this.setBusy(false);
      if (err instanceof ApiError && err.status === 401) return;
      const unplaced = [];
      for (const d of err.details || []) {
        const key = String(d.field || '').replace(/^delta\./, '');
        if (!this.fieldError(key, `${fieldLabel(key)}: ${d.message}`)) unplaced.push(`${d.field}: ${d.message}`);
      }
      this.showError(`Nothing saved: ${err.message}${unplaced.length ? ` (${unplaced.join('; ')})` : ''}.`
        + (err.details && err.details.length ? ' The fields concerned say why.' : ''));
      this.focusInvalid();
    }
  }

  // the next record's Edit, the next thing to do after a save
  nextAfter(pfaId) {
    const i = this.items.findIndex((r) => r.pfaId === pfaId);
    const next = this.items[i + 1] || this.items[i];
    return next ? document.querySelector(`[data-focus-key="redit-${CSS.escape(next.pfaId)}"]`) : null;
  }

  // --- Record history ---------------------------------------------------------------------

  async openHistory(pfaId, opener = document.activeElement) {
    this.historyOpener = opener;
    setText($('history-sub'), `${pfaId}: what happened to it here and at PEMS, newest first.`);
    replaceChildren($('history-body'), h('p', { class: 'loading' }, 'Loading…'));
    this.historyDialog.showModal();
    $('history-close').focus();
    let data;
    try {
      data = (await this.ctx.api.get(`${this.recordPath(pfaId, '/history')}`)).data;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      replaceChildren($('history-body'), h('p', { class: 'notice error' }, `The history could not be loaded: ${err.message}.`));
      return;
    }
    const events = (Array.isArray(data.events) ? data.events : [])
      .slice().sort((a, b) => String(b.at).localeCompare(String(a.at)));
    if (!events.length) {
      replaceChildren($('history-body'), h('p', { class: 'empty' }, 'Nothing has happened to this record yet.'));
      return;
    }
    replaceChildren($('history-body'), h('ol', { class: 'history', 'aria-label': `History of ${pfaId}, newest first` },
      events.map((e) => {
        const [what, who] = describeEvent(e);
        return h('li', { class: `event ${e.kind}` },
          h('time', { datetime: e.at }, fmtDateTime(e.at)),
          h('span', { class: 'what' }, what),
          h('span', { class: 'who' }, `by ${who}`));
      })));
  }

  afterClose(opener) {
    if (this.editDialog.open || this.historyDialog.open) return;
    if (opener && opener.isConnected) opener.focus();
    else $('records-view').focus();
  }
}
