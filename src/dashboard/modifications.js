// "Modifications": the queue viewer. Filter by status and PFA id, paging, each modification's
// delta and queue item, "Retry" on failed items and "Cancel" on pending ones (one, or all the
// selected), and a preview of the request pems-sync sends to PEMS for it.
import { ApiError, query } from './api.js';
import { $, h, newId, replaceChildren, setText } from './dom.js';
import { fmtDateTime, fmtNumber, fmtValue } from './format.js';
import { fieldLabel } from './fields.js';
import { confirmOnce } from './confirm.js';

const LIMIT = 20;
const STATUS_WORDS = {
  draft: 'Draft', pending_sync: 'Pending sync', queued: 'Queued', synced: 'Synced',
  sync_error: 'Sync error', conflict: 'Conflict', discarded: 'Discarded',
};
const ACTIONS = {
  retry: { when: 'failed', path: 'retry', done: 'sent to the queue again', word: 'failed', verb: 'Send again' },
  cancel: { when: 'pending', path: 'cancel', done: 'taken off the queue (kept as drafts)', word: 'pending', verb: 'Take off the queue' },
};
const ITEM_WORDS = {
  pending: 'waiting', processing: 'being sent', completed: 'sent', failed: 'failed', cancelled: 'taken off the queue',
};

// the request pems-sync makes to PEMS for this modification (pems_client; README "How a
// modification flows"): on the version it was made on, or rebased when PEMS moved on elsewhere
function pemsRequest(m) {
  const path = `/pfa/${encodeURIComponent(m.pfaId)}`;
  if (m.operation === 'delete') return `DELETE ${path}?version=${m.baseVersion}`;
  return `PUT ${path}\n${JSON.stringify({ version: m.baseVersion, changes: m.delta || {} }, null, 2)}`;
}

// "What will be sent" only where it will be sent as shown
function sendsAsShown(m) {
  return ['pending_sync', 'queued', 'synced', 'sync_error'].includes(m.status);
}

function notSentWords(m) {
  switch (m.status) {
    case 'draft': return 'A draft: nothing is sent until it is sent again (Send again).';
    case 'conflict': return 'Nothing is sent until the conflict is resolved; what is sent then depends on the choice.';
    case 'discarded': return 'Discarded: never sent.';
    default: return '';
  }
}

export class ModificationsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.filter = { status: '', pfaId: '' };
    this.reset();
    $('mods-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      this.applyFilter();
    });
    $('f-status').addEventListener('change', () => this.applyFilter());
    $('mods-apply').addEventListener('click', () => this.applySelected());
    $('mods-action').addEventListener('change', () => this.updateToolbar());
  }

  reset() {
    this.offset = 0;
    this.items = [];
    this.total = undefined;
    this.selected = new Map(); // queue item id -> modification
    this.busy = false;
    this.openPreviews = new Set();
    this.renderedPath = null;
    replaceChildren($('mods-body'), h('p', { class: 'loading' }, 'Loading modifications…'));
    replaceChildren($('mods-pager'));
    this.updateToolbar();
  }

  applyFilter() {
    this.filter = { status: $('f-status').value, pfaId: $('f-pfa').value.trim() };
    this.offset = 0;
    this.selected.clear();
    this.ctx.refreshSoon();
  }

  path() {
    return `/modifications${query({ organizationId: this.ctx.org.id, status: this.filter.status,
      pfaId: this.filter.pfaId, limit: LIMIT, offset: this.offset })}`;
  }

  // after an action, focus goes to the next row's action, or to the list's heading
  focusNext(afterId) {
    const i = this.items.findIndex((m) => m.id === afterId);
    for (const m of this.items.slice(i + 1).concat(this.items.slice(0, Math.max(0, i)))) {
      const q = m.queueItem;
      const key = q && q.status === 'failed' ? `retry-${q.id}` : q && q.status === 'pending' ? `cancel-${q.id}` : null;
      const el = key && document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
      if (el) return el.focus();
    }
    return $('modifications-view').focus();
  }

  async refresh() {
    const org = this.ctx.org;
    const path = this.path();
    let res;
    try {
      res = await this.ctx.api.get(path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        this.renderedPath = path;
        replaceChildren($('mods-body'), h('p', { class: 'empty' }, h('strong', {}, 'This filter is not accepted: '),
          `${err.message}${(err.details || []).map((d) => ` ${d.field}: ${d.message}`).join(';')}. Change it and press Filter.`));
        return;
      }
      throw err;
    }
    const { data, changed } = res;
    // as in the conflicts: stale pages dropped, a 304 of another page drawn from the cache
    if (org !== this.ctx.org || path !== this.path()) return;
    if (!changed && path === this.renderedPath) return;
    this.renderedPath = path;
    const items = Array.isArray(data.modifications) ? data.modifications : [];
    if (items.length === 0 && this.offset > 0 && data.total > 0) {
      this.offset = Math.max(0, Math.floor((data.total - 1) / LIMIT) * LIMIT);
      return this.refresh();
    }
    this.items = items;
    this.total = data.total;
    const actionable = new Map();
    for (const m of items) if (m.queueItem) actionable.set(m.queueItem.id, m);
    for (const id of [...this.selected.keys()]) {
      const m = actionable.get(id);
      if (!m || !['failed', 'pending'].includes(m.queueItem.status)) this.selected.delete(id);
      else this.selected.set(id, m);
    }
    this.render();
  }

  updateToolbar() {
    const canSync = this.ctx.can('Sync');
    const anyActionable = this.items.some((m) => m.queueItem && ['failed', 'pending'].includes(m.queueItem.status));
    $('mods-toolbar').hidden = !canSync || !anyActionable;
    const n = this.selected.size;
    setText($('mods-selected'), n ? `${fmtNumber(n)} selected:` : 'Select failed or pending items to act on several at once.');
    $('mods-apply').disabled = n === 0 || this.busy;
  }

  render() {
    const filtered = this.filter.status || this.filter.pfaId;
    setText($('mods-count'), this.total === undefined ? ''
      : `${fmtNumber(this.total)} modification${this.total === 1 ? '' : 's'} ${filtered ? 'matching' : 'in all'}`);
    this.updateToolbar();
    if (!this.items.length) {
      replaceChildren($('mods-body'), h('p', { class: 'empty' }, filtered
        ? [h('strong', {}, 'No modification matches this filter. '), 'Set Status to “Any status” and clear PFA id, then press Filter, to see them all.']
        : [h('strong', {}, 'No local modifications yet. '), 'Edits made through the API (POST /api/pems/modifications) appear here with their queue items.']));
      replaceChildren($('mods-pager'));
      return;
    }
    const canSync = this.ctx.can('Sync');
    const head = h('tr', {},
      canSync ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Select')) : null,
      h('th', { scope: 'col' }, 'PFA record'),
      h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Change'),
      h('th', { scope: 'col' }, 'Queue item'),
      h('th', { scope: 'col' }, 'Updated'),
      h('th', { scope: 'col' }, 'Actions'));
    const rows = this.items.map((m) => this.row(m, canSync));
    replaceChildren($('mods-body'), h('div', { class: 'table-wrap' },
      h('table', { class: 'stack' }, h('caption', { class: 'visually-hidden' }, 'Modifications, newest first'),
        h('thead', {}, head), h('tbody', {}, rows))));
    this.renderPager();
  }

  row(m, canSync) {
    const q = m.queueItem;
    const pfaCell = newId('mpfa');
    const actionable = canSync && q && (q.status === 'failed' || q.status === 'pending');
    const delta = m.delta && typeof m.delta === 'object' ? Object.entries(m.delta) : [];
    const who = m.modifiedBy || {};
    const preview = h('details', {
      class: 'send-preview', open: this.openPreviews.has(m.id),
      ontoggle: (e) => { if (e.target.open) this.openPreviews.add(m.id); else this.openPreviews.delete(m.id); },
    },
    h('summary', { dataset: { focusKey: `preview-${m.id}` } }, m.status === 'synced' ? 'What was sent' : 'What will be sent'),
    h('pre', {}, pemsRequest(m)),
    h('p', { class: 'hint' }, q ? `With Idempotency-Key ${q.id}:${m.baseVersion}. ` : '',
      'If PEMS changed other fields meanwhile, the same changes go on its newer version.'));
    return h('tr', { class: q && this.selected.has(q.id) ? 'selected' : '' },
      canSync ? h('td', {}, actionable ? h('input', {
        type: 'checkbox', 'aria-label': `Select ${m.pfaId} (${q.status})`, checked: this.selected.has(q.id),
        dataset: { focusKey: `mselect-${q.id}` },
        onchange: (e) => {
          if (e.target.checked) this.selected.set(q.id, m); else this.selected.delete(q.id);
          e.target.closest('tr').classList.toggle('selected', e.target.checked);
          this.updateToolbar();
        },
      }) : null) : null,
      h('td', { 'data-label': 'PFA record', id: pfaCell }, h('strong', {}, m.pfaId),
        h('div', { class: 'hint' }, m.operation === 'delete' ? `delete, made on PEMS's version ${m.baseVersion}`
          : `change made on PEMS's version ${m.baseVersion}`)),
      h('td', { 'data-label': 'Status' }, h('span', { class: `status-tag ${m.status}` }, STATUS_WORDS[m.status] || m.status)),
      h('td', { 'data-label': 'Change' }, delta.length
        ? h('ul', { class: 'delta' }, delta.map(([k, v]) => h('li', {}, h('span', { class: 'k' }, `${fieldLabel(k)} `),
          h('code', { class: 'key' }, k), ': ', fmtValue(v))))
        : (m.operation === 'delete' ? 'delete the record' : '—')),
      h('td', { 'data-label': 'Queue item', class: 'queue-info' }, q ? [
        // a conflict's item ends "completed" with nothing written: it is shown as what it is
        m.status === 'conflict'
          ? h('span', { class: 'status-tag conflict' }, 'held: conflict')
          : h('span', { class: `status-tag ${q.status}` }, ITEM_WORDS[q.status] || q.status),
        m.status === 'conflict' ? h('div', {}, 'Not sent: PEMS changed the same field. Resolve it under Conflicts.') : null,
        h('div', {}, `try ${fmtNumber(q.attempts)} of 4, priority ${fmtNumber(q.priority)}`),
        q.lastHttpStatus ? h('div', {}, `last HTTP status ${q.lastHttpStatus}`) : null,
        q.lastError ? h('div', { class: 'err' }, `last error: ${q.lastError}`) : null,
        q.status === 'pending' && q.scheduledAt ? h('div', {}, `due ${fmtDateTime(q.scheduledAt)}`) : null,
        q.completedAt ? h('div', {}, `finished ${fmtDateTime(q.completedAt)}`) : null,
      ] : m.status === 'pending_sync'
        ? h('div', {}, h('strong', {}, 'Not queued yet. '), canSync ? 'Sync now sends it.' : 'Sync now (Sync permission) sends it.')
        : 'not queued'),
      h('td', { 'data-label': 'Updated' }, fmtDateTime(m.updatedAt), h('div', { class: 'hint' }, who.username || '')),
      h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' },
        canSync && q && q.status === 'failed' ? h('button', { type: 'button', 'aria-describedby': pfaCell,
          dataset: { focusKey: `retry-${q.id}` }, onclick: () => this.act([m], 'retry') }, 'Retry') : null,
        canSync && q && q.status === 'pending' ? h('button', { type: 'button', 'aria-describedby': pfaCell,
          dataset: { focusKey: `cancel-${q.id}` }, onclick: () => this.act([m], 'cancel') }, 'Cancel') : null,
        // a refused value is fixed in place: the record's Edit dialog, holding what was refused
        m.status === 'sync_error' && m.operation === 'update' && this.ctx.can('Write') ? h('button', {
          type: 'button', 'aria-describedby': pfaCell, dataset: { focusKey: `edit-${m.id}` },
          onclick: () => this.ctx.editRecord(m.pfaId, { replaces: m }) }, 'Edit') : null,
        canSync && m.status === 'draft' ? h('button', { type: 'button', 'aria-describedby': pfaCell,
          dataset: { focusKey: `send-${m.id}` }, onclick: () => this.sendDraft(m) }, 'Send again') : null,
        h('button', { type: 'button', class: 'quiet', 'aria-describedby': pfaCell, dataset: { focusKey: `mhist-${m.id}` },
          onclick: (e) => this.ctx.showHistory(m.pfaId, e.currentTarget) }, 'History')),
      sendsAsShown(m) ? preview : h('p', { class: 'hint' }, notSentWords(m))));
  }

  renderPager() {
    const pager = $('mods-pager');
    if (this.total <= LIMIT && this.offset === 0) return replaceChildren(pager);
    const from = this.offset + 1;
    const to = Math.min(this.offset + this.items.length, this.total);
    replaceChildren(pager,
      h('button', { type: 'button', disabled: this.offset === 0, dataset: { focusKey: 'm-prev' },
        onclick: () => this.page(-LIMIT) }, 'Previous page'),
      h('span', {}, `${fmtNumber(from)}–${fmtNumber(to)} of ${fmtNumber(this.total)}`),
      h('button', { type: 'button', disabled: to >= this.total, dataset: { focusKey: 'm-next' },
        onclick: () => this.page(LIMIT) }, 'Next page'));
  }

  page(step) {
    this.offset = Math.max(0, this.offset + step);
    this.selected.clear();
    this.ctx.refreshSoon();
  }

  async applySelected() {
    const action = $('mods-action').value;
    const mods = [...this.selected.values()];
    const a = ACTIONS[action];
    if (!mods.length || this.busy) return;
    const yes = await confirmOnce(`${a.verb}: ${fmtNumber(mods.length)} item${mods.length === 1 ? '' : 's'}?`,
      `${mods.map((m) => m.pfaId).join(', ')}: the ${a.word} ones among them are ${a.done}.`,
      `${a.verb} (${fmtNumber(mods.length)})`);
    if (yes) this.act(mods, action);
  }

  async sendDraft(m) {
    try {
      const r = await this.ctx.api.post('/write-sync', { organizationId: this.ctx.org.id, modificationIds: [m.id] });
      this.ctx.toast(r.queuedCount ? `${m.pfaId} queued for PEMS again.` : `${m.pfaId} was queued already.`);
      this.focusNext(m.id);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) this.ctx.toast(`${m.pfaId} not sent: ${err.message}`, 'error');
    }
    this.ctx.refreshSoon();
  }

  async act(mods, action) {
    const a = ACTIONS[action];
    if (this.busy || !mods.length) return;
    const fit = mods.filter((m) => m.queueItem && m.queueItem.status === a.when);
    const skipped = mods.length - fit.length;
    this.busy = true;
    this.updateToolbar();
    let done = 0;
    const failed = [];
    for (const m of fit) {
      try {
        await this.ctx.api.post(`/queue/${encodeURIComponent(m.queueItem.id)}/${a.path}`);
        done += 1;
        this.selected.delete(m.queueItem.id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) break;
        failed.push(`${m.pfaId}: ${err.message}`);
      }
    }
    this.busy = false;
    this.updateToolbar();
    const names = fit.length === 1 ? fit[0].pfaId : `${fmtNumber(done)} items`;
    if (done) this.ctx.toast(`${names} ${a.done}.`);
    if (skipped) this.ctx.toast(`${fmtNumber(skipped)} selected item${skipped === 1 ? ' was' : 's were'} not ${a.word}, so left as ${skipped === 1 ? 'it was' : 'they were'}.`, 'warn');
    if (failed.length) this.ctx.toast(`Not done: ${failed.join('; ')}`, 'error');
    this.focusNext(fit.length ? fit[fit.length - 1].id : null);
    this.ctx.refreshSoon();
  }
}
