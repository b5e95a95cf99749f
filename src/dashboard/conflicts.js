// "Conflicts": the unresolved list with bulk "Use local" / "Use PEMS", and the "Resolve conflict"
// dialog: base, local and PEMS values side by side per field, overlapping fields highlighted,
// one-sided changes shown merged, a per-field choice for "Merge" and the exact payload before
// it is sent.
import { ApiError, query } from './api.js';
import { $, h, newId, replaceChildren, setText } from './dom.js';
import { fmtDateTime, fmtNumber, fmtValue } from './format.js';
import { farOutside, fieldHint, fieldLabel, fromInput } from './fields.js';
import { confirmOnce } from './confirm.js';

const LIMIT = 20;
const RESOLUTION_WORDS = { use_local: 'kept the local edit', use_pems: 'kept PEMS', merge: 'merged' };

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function detailField(d) {
  return String(d.field || '').replace(/^(mergedData|delta)\./, '');
}

export class ConflictsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.reset();
    $('bulk-local').addEventListener('click', () => this.resolveSelected('use_local'));
    $('bulk-pems').addEventListener('click', () => this.resolveSelected('use_pems'));
    this.dialog = $('resolve-dialog');
    $('resolve-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => this.afterClose());
    $('resolve-local').addEventListener('click', () => this.send('use_local'));
    $('resolve-pems').addEventListener('click', () => this.send('use_pems'));
    // Merge shows the payload; pressed again with the payload on screen, it sends it
    $('resolve-merge').addEventListener('click', () => {
      if (!$('merge-preview').hidden && this.payload) this.send('merge');
      else this.previewMerge();
    });
    $('merge-send').addEventListener('click', () => this.send('merge'));
    $('resolve-form').addEventListener('submit', (e) => e.preventDefault());
    $('resolve-form').addEventListener('change', () => this.choicesChanged());
    $('resolve-form').addEventListener('input', () => this.choicesChanged());
  }

  reset() {
    this.offset = 0;
    this.items = [];
    this.total = undefined;
    this.selected = new Set();
    this.doneIds = new Set();
    this.renderedPath = null;
    this.busy = false;
    replaceChildren($('conflicts-body'), h('p', { class: 'loading' }, 'Loading conflicts…'));
    replaceChildren($('conflicts-pager'));
    this.updateBadge();
    this.updateToolbar();
  }

  // after an action, focus goes to the next thing to do: the next conflict's Resolve, or the
  // list's heading when none is left
  focusNext() {
    const next = this.items.find((c) => !this.doneIds.has(c.id));
    const btn = next && document.querySelector(`[data-focus-key="resolve-${CSS.escape(next.id)}"]`);
    (btn || $('conflicts-view')).focus();
  }

  path() {
    return `/conflicts${query({ organizationId: this.ctx.org.id, status: 'unresolved', limit: LIMIT, offset: this.offset })}`;
  }

  async refresh() {
    const org = this.ctx.org;
    const path = `/conflicts${query({ organizationId: org.id, status: 'unresolved', limit: LIMIT, offset: this.offset })}`;
    const { data, changed } = await this.ctx.api.get(path);
    // an answer for a page no longer asked for is dropped; an unchanged one (304) of the page
    // on screen costs nothing, of another page it is drawn from the cache
    if (org !== this.ctx.org || path !== this.path()) return;
    if (!changed && path === this.renderedPath) return;
    this.renderedPath = path;
    const items = Array.isArray(data.conflicts) ? data.conflicts : [];
    if (items.length === 0 && this.offset > 0 && data.total > 0) {
      this.offset = Math.max(0, Math.floor((data.total - 1) / LIMIT) * LIMIT);
      return this.refresh();
    }
    // new conflicts since the last look (not on the first load of an organization)
    if (this.total !== undefined && data.total > this.total) {
      const n = data.total - this.total;
      this.ctx.toast(`${fmtNumber(n)} new conflict${n === 1 ? '' : 's'} to resolve in ${org.code}.`, 'warn');
    }
    this.total = data.total;
    this.items = items;
    const ids = new Set(items.map((c) => c.id));
    for (const id of [...this.selected]) if (!ids.has(id)) this.selected.delete(id);
    this.render();
  }

  updateBadge() {
    const badge = $('conflict-badge');
    const n = this.total || 0;
    badge.hidden = !n;
    replaceChildren(badge, fmtNumber(n), h('span', { class: 'visually-hidden' }, ' unresolved'));
    setText($('conflicts-count'), this.total === undefined ? '' : `${fmtNumber(n)} unresolved`);
    this.ctx.titleChanged({ conflicts: n });
  }

  updateToolbar() {
    const canSync = this.ctx.can('Sync');
    $('conflicts-toolbar').hidden = !canSync || !this.items.length;
    const n = this.selected.size;
    setText($('conflicts-selected'), n ? `${fmtNumber(n)} selected:` : 'Select conflicts to resolve them together:');
    $('bulk-local').disabled = n === 0 || this.busy;
    $('bulk-pems').disabled = n === 0 || this.busy;
  }

  render() {
    this.updateBadge();
    this.updateToolbar();
    const canSync = this.ctx.can('Sync');
    if (!this.items.length) {
      replaceChildren($('conflicts-body'), h('p', { class: 'empty' },
        h('strong', {}, 'No unresolved conflicts. '),
        'Nothing needs you here. A conflict appears when PEMS changed a field that a local edit changed too; ',
        'edits that do not overlap are merged by themselves.'));
      replaceChildren($('conflicts-pager'));
      return;
    }
    const allChecked = this.items.every((c) => this.selected.has(c.id));
    const head = h('tr', {},
      canSync ? h('th', { scope: 'col' }, h('input', {
        type: 'checkbox', 'aria-label': 'Select all conflicts on this page', checked: allChecked,
        dataset: { focusKey: 'conflicts-all' },
        onchange: (e) => {
          for (const c of this.items) {
            if (e.target.checked) this.selected.add(c.id); else this.selected.delete(c.id);
          }
          this.render();
        },
      })) : null,
      h('th', { scope: 'col' }, 'PFA record'),
      h('th', { scope: 'col' }, 'Fields in conflict'),
      h('th', { scope: 'col' }, 'Versions'),
      h('th', { scope: 'col' }, 'Local edit by'),
      h('th', { scope: 'col' }, 'Found'),
      canSync ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Action')) : null);
    const rows = this.items.map((c) => {
      const pfaCell = newId('pfa');
      const details = c.pfaDetails || {};
      const who = c.modifiedBy || {};
      return h('tr', { class: this.selected.has(c.id) ? 'selected' : '' },
        canSync ? h('td', {}, h('input', {
          type: 'checkbox', 'aria-label': `Select ${c.pfaId}`, checked: this.selected.has(c.id),
          dataset: { focusKey: `select-${c.id}` },
          onchange: (e) => {
            if (e.target.checked) this.selected.add(c.id); else this.selected.delete(c.id);
            e.target.closest('tr').classList.toggle('selected', e.target.checked);
            this.updateToolbar();
          },
        })) : null,
        h('td', { 'data-label': 'PFA record', id: pfaCell },
          h('strong', {}, c.pfaId), ' ',
          h('a', { href: '#records-view', class: 'record-link', dataset: { focusKey: `crec-${c.id}` },
            onclick: (e) => { e.preventDefault(); this.ctx.showRecord(c.pfaId); } },
          h('span', { class: 'visually-hidden' }, `${c.pfaId}: `), 'show record'),
          [details.category, details.class].filter(Boolean).length
            ? h('div', { class: 'hint' }, [details.category, details.class].filter(Boolean).join(' · ')) : null),
        h('td', { 'data-label': 'Fields in conflict' }, (c.conflictFields || []).map(fieldLabel).join(', ')),
        h('td', { 'data-label': 'Versions' }, `Edited on PEMS's version ${c.localVersion}; PEMS has changed it since (now version ${c.pemsVersion})`),
        h('td', { 'data-label': 'Local edit by' }, who.username || who.email || '—'),
        h('td', { 'data-label': 'Found' }, fmtDateTime(c.createdAt)),
        canSync ? h('td', {}, h('button', {
          type: 'button', 'aria-describedby': pfaCell, dataset: { focusKey: `resolve-${c.id}` },
          onclick: (e) => this.open(c, e.currentTarget),
        }, 'Resolve')) : null);
    });
    replaceChildren($('conflicts-body'), h('div', { class: 'table-wrap' },
      h('table', { class: 'stack' }, h('caption', { class: 'visually-hidden' }, 'Unresolved conflicts'),
        h('thead', {}, head), h('tbody', {}, rows))));
    this.renderPager();
  }

  renderPager() {
    const pager = $('conflicts-pager');
    if (this.total <= LIMIT) return replaceChildren(pager);
    const from = this.offset + 1;
    const to = Math.min(this.offset + this.items.length, this.total);
    replaceChildren(pager,
      h('button', { type: 'button', disabled: this.offset === 0, dataset: { focusKey: 'c-prev' },
        onclick: () => this.page(-LIMIT) }, 'Previous page'),
      h('span', {}, `${fmtNumber(from)}–${fmtNumber(to)} of ${fmtNumber(this.total)}`),
      h('button', { type: 'button', disabled: to >= this.total, dataset: { focusKey: 'c-next' },
        onclick: () => this.page(LIMIT) }, 'Next page'));
  }

  page(step) {
    this.offset = Math.max(0, this.offset + step);
    this.ctx.refreshSoon();
  }

  async resolveSelected(resolution) {
    const ids = this.items.filter((c) => this.selected.has(c.id));
    if (!ids.length || this.busy) return;
    const n = ids.length;
    const what = resolution === 'use_local'
      ? `The local edit is kept for every field of ${n === 1 ? 'this record' : `these ${fmtNumber(n)} records`} and sent to PEMS (${ids.map((c) => c.pfaId).join(', ')}).`
      : `PEMS's values are kept for ${n === 1 ? 'this record' : `these ${fmtNumber(n)} records`}; the local edits are discarded (${ids.map((c) => c.pfaId).join(', ')}).`;
    const yes = await confirmOnce(`Resolve ${fmtNumber(n)} conflict${n === 1 ? '' : 's'}?`, what,
      resolution === 'use_local' ? `Use local for ${fmtNumber(n)}` : `Use PEMS for ${fmtNumber(n)}`);
    if (!yes) return;
    this.busy = true;
    this.updateToolbar();
    const failed = [];
    let done = 0;
    for (const c of ids) {
      try {
        await this.ctx.api.post(`/conflicts/${encodeURIComponent(c.id)}/resolve`, { resolution });
        done += 1;
        this.selected.delete(c.id);
        this.doneIds.add(c.id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) break;
        failed.push(`${c.pfaId}: ${err.message}`);
      }
    }
    this.busy = false;
    this.updateToolbar();
    if (done) this.ctx.toast(`${fmtNumber(done)} conflict${done === 1 ? '' : 's'} resolved: ${RESOLUTION_WORDS[resolution]}.`);
    if (failed.length) this.ctx.toast(`Not resolved: ${failed.join('; ')}`, 'error');
    this.focusNext();
    this.ctx.refreshSoon();
  }

  // --- the dialog -------------------------------------------------------------------------

  fieldsOf(c) {
    const local = c.localData || {};
    const base = c.baseData || null;
    const pems = c.pemsData || {};
    const conflictFields = c.conflictFields || [];
    const names = [...conflictFields];
    for (const f of Object.keys(local)) if (!names.includes(f)) names.push(f);
    if (base) {
      for (const f of new Set([...Object.keys(base), ...Object.keys(pems)])) {
        if (!names.includes(f) && !same(base[f], pems[f])) names.push(f);
      }
    }
    return names.map((name) => {
      const inLocal = Object.prototype.hasOwnProperty.call(local, name);
      const kind = conflictFields.includes(name) ? 'conflict' : inLocal ? 'local' : 'pems';
      return {
        name,
        kind,
        base: base ? base[name] : undefined,
        local: inLocal ? local[name] : (base ? base[name] : undefined),
        pems: pems[name],
      };
    });
  }

  open(c, opener) {
    this.current = c;
    this.openerKey = opener && opener.dataset.focusKey;
    this.opener = opener;
    this.fields = this.fieldsOf(c);
    this.askedFar = new Map();
    const details = c.pfaDetails || {};
    const who = c.modifiedBy || {};
    setText($('resolve-sub'), `${c.pfaId}${details.category ? ` (${[details.category, details.class].filter(Boolean).join(', ')})` : ''}: `
      + `${who.username || 'a planner'} edited it when PEMS had version ${c.localVersion}; PEMS has changed it since and is now at version ${c.pemsVersion}. `
      + 'Keep one side for every field, or choose per field and merge.');
    $('resolve-error').hidden = true;
    $('merge-preview').hidden = true;
    replaceChildren($('resolve-fields'), this.fields.map((f) => this.fieldBox(f, c)));
    this.choicesChanged();
    this.setBusy(false);
    // the list's own "Use local" / "Use PEMS" are out of the way while the dialog is open
    $('conflicts-toolbar').hidden = true;
    this.dialog.showModal();
    const first = this.dialog.querySelector('fieldset.conflict input[type="radio"]');
    (first || $('resolve-local')).focus();
  }

  fieldBox(f, c) {
    const group = `choice-${f.name}`;
    const errId = newId('err');
    const noteId = newId('note');
    const notes = {
      conflict: 'Both sides changed this field: choose the value to keep.',
      local: 'Only the local edit changed this field: merged as local.',
      pems: 'Only PEMS changed this field: merged as PEMS has it.',
    };
    const side = (label, version, choice) => {
      const id = newId('opt');
      const valueId = newId('val');
      const radio = choice && f.kind !== 'pems'
        ? h('input', { type: 'radio', id, name: group, value: choice, checked: f.kind === 'local' && choice === 'local',
          'aria-describedby': valueId })
        : null;
      return h('div', { class: `side ${choice || 'base'}` },
        h('div', { class: 'side-label' }, radio,
          radio ? h('label', { for: id }, label) : h('span', {}, label),
          version ? h('span', {}, `version ${version}`) : null),
        h('div', { class: 'v', id: valueId }, fmtValue(f[choice || 'base'])));
    };
    const children = [
      h('legend', {}, fieldLabel(f.name), ' ', h('code', { class: 'key' }, f.name)),
      h('p', { class: 'hint', id: noteId }, notes[f.kind]),
      h('div', { class: 'sides' },
        side('Base', c.localVersion, null),
        side('Local', null, 'local'),
        side('PEMS', c.pemsVersion, 'pems')),
    ];
    if (f.kind !== 'pems') {
      const otherId = newId('opt');
      const inputId = newId('in');
      children.push(h('div', { class: 'other' },
        h('input', { type: 'radio', id: otherId, name: group, value: 'other' }),
        h('label', { for: otherId }, 'Other value'),
        h('label', { for: inputId, class: 'visually-hidden' }, `Other value for ${fieldLabel(f.name)}`),
        h('input', { type: 'text', id: inputId, class: 'other-input', dataset: { field: f.name },
          'aria-describedby': `${errId} ${inputId}-hint`, autocomplete: 'off', spellcheck: 'false',
          inputmode: typeof (f.local ?? f.pems) === 'number' ? 'decimal' : undefined }),
        h('span', { class: 'hint', id: `${inputId}-hint` }, fieldHint(f.name))));
    }
    children.push(h('p', { class: 'field-error', id: errId, hidden: true }));
    return h('fieldset', { class: `field ${f.kind === 'conflict' ? 'conflict' : 'merged'}`,
      'aria-describedby': `${noteId} ${errId}`, dataset: { field: f.name } }, children);
  }

  choicesChanged() {
    $('merge-preview').hidden = true;
    this.payload = null;
    for (const box of this.dialog.querySelectorAll('fieldset.field')) {
      const checked = box.querySelector('input[type="radio"]:checked');
      for (const s of box.querySelectorAll('.side')) s.classList.toggle('chosen', !!checked && s.classList.contains(checked.value));
    }
  }

  // typing in "another value" selects it
  fieldError(name, message) {
    const box = this.dialog.querySelector(`fieldset[data-field="${CSS.escape(name)}"]`);
    if (!box) return false;
    const p = box.querySelector('.field-error');
    setText(p, message);
    p.hidden = !message;
    const input = box.querySelector('.other-input');
    if (input) {
      if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    }
    return true;
  }

  clearErrors() {
    for (const f of this.fields) this.fieldError(f.name, '');
    $('resolve-error').hidden = true;
  }

  mergedData() {
    const data = {};
    const missing = [];
    const unread = [];
    const far = [];
    for (const f of this.fields) {
      if (f.kind === 'pems') continue;
      const box = this.dialog.querySelector(`fieldset[data-field="${CSS.escape(f.name)}"]`);
      const input = box.querySelector('.other-input');
      let choice = box.querySelector('input[type="radio"]:checked');
      if (!choice && input && input.value.trim() !== '') {
        choice = box.querySelector('input[value="other"]');
        choice.checked = true;
      }
      if (!choice) {
        missing.push(f.name);
        continue;
      }
      if (choice.value === 'other') {
        const r = fromInput(f.name, input.value);
        if (r.error) {
          unread.push([f.name, r.error]);
          continue;
        }
        // a number far from both sides (a slipped separator) is asked about once
        if (typeof r.value === 'number' && farOutside(r.value, f.local, f.pems) && this.askedFar.get(f.name) !== r.value) {
          far.push([f.name, r.value]);
        }
        data[f.name] = r.value;
      } else {
        data[f.name] = choice.value === 'local' ? f.local : (f.pems === undefined ? null : f.pems);
      }
    }
    return { data, missing, unread, far };
  }

  previewMerge() {
    this.clearErrors();
    const { data, missing, unread, far } = this.mergedData();
    if (missing.length) {
      for (const name of missing) this.fieldError(name, 'Choose Local, PEMS or another value for this field.');
      this.showDialogError(`Choose a value for ${missing.map(fieldLabel).join(', ')} first.`);
      const first = this.dialog.querySelector(`fieldset[data-field="${CSS.escape(missing[0])}"] input[type="radio"]`);
      if (first) first.focus();
      return;
    }
    if (unread.length) {
      for (const [name, why] of unread) this.fieldError(name, `${fieldLabel(name)} ${why}.`);
      this.showDialogError(`Not sent: ${unread.map(([n]) => fieldLabel(n)).join(', ')} do${unread.length === 1 ? 'es' : ''} not read as written.`);
      this.dialog.querySelector('.other-input[aria-invalid="true"]').focus();
      return;
    }
    if (far.length) {
      for (const [name, v] of far) {
        const f = this.fields.find((x) => x.name === name);
        this.askedFar.set(name, v);
        this.fieldError(name, `${fmtValue(v)} is far from both Local (${fmtValue(f.local)}) and PEMS (${fmtValue(f.pems)}). `
          + 'Check it; press Merge again to keep it.');
      }
      this.showDialogError('One value is far outside both sides: check it, then press Merge again to keep it.');
      this.dialog.querySelector('.other-input[aria-invalid="true"]').focus();
      return;
    }
    // every field at PEMS's value is "Use PEMS": nothing is written to PEMS
    const allPems = this.fields.filter((f) => f.kind !== 'pems').every((f) => same(data[f.name], f.pems === undefined ? null : f.pems));
    this.payload = allPems ? { resolution: 'use_pems' } : { resolution: 'merge', mergedData: data };
    this.payloadResolution = allPems ? 'use_pems' : 'merge';
    setText($('merge-preview-id'), this.current.id);
    const words = allPems ? ['Every field keeps PEMS\'s value: this is Use PEMS, and nothing is written to PEMS.']
      : Object.entries(data).map(([k, v]) => `${fieldLabel(k)}: ${fmtValue(v)}`);
    replaceChildren($('merge-words'), words.map((w) => h('li', {}, w)));
    setText($('merge-payload'), JSON.stringify(this.payload, null, 2));
    $('merge-preview').hidden = false;
    $('merge-payload').focus();
  }

  showDialogError(message) {
    setText($('resolve-error'), message);
    $('resolve-error').hidden = false;
  }

  setBusy(busy) {
    for (const id of ['resolve-local', 'resolve-pems', 'resolve-merge', 'merge-send']) $(id).disabled = busy;
  }

  async send(resolution) {
    const c = this.current;
    if (!c) return;
    const body = resolution === 'merge' ? this.payload : { resolution };
    if (!body) return;
    if (resolution === 'merge') resolution = this.payloadResolution || 'merge';
    this.clearErrors();
    this.setBusy(true);
    try {
      await this.ctx.api.post(`/conflicts/${encodeURIComponent(c.id)}/resolve`, body);
      this.selected.delete(c.id);
      this.doneIds.add(c.id);
      this.focusAfterClose = true;
      this.dialog.close();
      this.ctx.toast(`Conflict on ${c.pfaId} resolved: ${RESOLUTION_WORDS[resolution]}.`);
      this.ctx.refreshSoon();
    } catch (err) {
      this.setBusy(false);
      if (err instanceof ApiError && err.status === 401) return;
      if (err instanceof ApiError && err.status === 409) {
        this.showDialogError(`${err.message}. Close this dialog; the list is refreshed.`);
        this.ctx.refreshSoon();
        return;
      }
      const unplaced = [];
      for (const d of err.details || []) {
        if (!this.fieldError(detailField(d), d.message)) unplaced.push(`${d.field}: ${d.message}`);
      }
      this.showDialogError(`Not resolved: ${err.message}${unplaced.length ? ` (${unplaced.join('; ')})` : ''}.`
        + (err.details && err.details.length ? ' The fields concerned say why.' : ''));
      $('merge-preview').hidden = true;
      const bad = this.dialog.querySelector('.other-input[aria-invalid="true"]');
      if (bad) bad.focus();
    }
  }

  afterClose() {
    // the close event is queued: the dialog may already be open again (a quick Esc, Enter)
    if (this.dialog.open) return;
    this.current = null;
    this.payload = null;
    this.updateToolbar();
    if (this.focusAfterClose) {
      this.focusAfterClose = false;
      this.focusNext();
      return;
    }
    // focus goes back to the button that opened the dialog (or its re-rendered twin)
    const again = this.openerKey
      && document.querySelector(`[data-focus-key="${CSS.escape(this.openerKey)}"]`);
    const target = again || (this.opener && this.opener.isConnected ? this.opener : $('conflicts-view'));
    target.focus();
  }
}
