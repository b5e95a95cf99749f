// "Sync status": queue counts, health, last and next sync, the chart of results over time,
// and "Sync now" (only with the Sync permission).
import { ApiError, query } from './api.js';
import { $, h, replaceChildren, setText } from './dom.js';
import { fmtBucket, fmtDateTime, fmtMs, fmtNumber, fmtPercent, fmtRelative, fmtTime } from './format.js';

const RANGES = { minute: 3600e3, hour: 24 * 3600e3, day: 30 * 24 * 3600e3 };
const HISTORY_EVERY_MS = 30000;
const HEALTH_WORDS = { healthy: 'healthy', degraded: 'degraded', unhealthy: 'unhealthy' };
const SERIES = [
  { key: 'synced', label: 'Synced', color: '#2f7d46' },
  { key: 'merged', label: 'Merged', color: '#0b5cad' },
  { key: 'conflict', label: 'Conflict', color: '#d98c00' },
  { key: 'failed', label: 'Failed', color: '#b00020' },
];

function isoNoMs(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let chartModule = null;
async function loadChart() {
  if (!chartModule) {
    // Debian's libjs-chart.js, served by nginx from /usr/share/javascript
    chartModule = import('/javascript/chart.js/chart.esm.js').then((m) => {
      m.Chart.register(m.BarController, m.BarElement, m.CategoryScale, m.LinearScale, m.Legend, m.Tooltip);
      return m;
    });
    chartModule.catch(() => { chartModule = null; });
  }
  return chartModule;
}

export class StatusView {
  constructor(ctx) {
    this.ctx = ctx;
    this.chart = null;
    this.reset();
    $('sync-now').addEventListener('click', () => this.syncNow());
    // the relative times ("in 40 seconds") move on between polls, and stop being promises
    // once they pass
    setInterval(() => { if (this.last) this.renderTimes(this.last); }, 5000);
    $('range').addEventListener('change', () => {
      this.historyAt = 0;
      this.refreshHistory().catch((e) => this.historyError(e));
    });
  }

  reset() {
    this.last = undefined;
    this.historyAt = 0;
    this.historyKey = '';
    const canSync = this.ctx.can('Sync');
    $('sync-now').hidden = !canSync;
    setText($('sync-hint'), canSync ? ''
      : 'Your role can watch the sync but not start one (that needs the Sync permission).');
    this.offlineSince = 0;
    this.answeredAt = 0;
    this.unqueued = undefined;
    $('status-note').hidden = true;
    for (const id of ['st-queued', 'st-processing', 'st-completed', 'st-conflicts', 'st-failed', 'st-unqueued', 'st-success', 'st-avg', 'st-last', 'st-next']) {
      setText($(id), '—');
    }
    setText($('health'), '');
    $('health').className = 'health';
  }

  async refresh() {
    const org = this.ctx.org;
    const { data, changed } = await this.ctx.api.get(`/sync-status${query({ organizationId: org.id })}`);
    if (org !== this.ctx.org) return;
    this.answeredAt = Date.now();
    // edits not queued yet: the API's count where it gives one, else the queue viewer's total
    if (typeof data.notQueued !== 'number') {
      const u = await this.ctx.api.get(`/modifications${query({ organizationId: org.id, status: 'pending_sync', limit: 1 })}`);
      if (org !== this.ctx.org) return;
      this.unqueued = u.data.total;
    } else {
      this.unqueued = data.notQueued;
    }
    if (changed || this.offlineSince || this.renderedUnqueued !== this.unqueued) this.render(data);
    else this.renderTimes(data);
    this.offlineSince = 0;
    const historyDue = Date.now() - this.historyAt > HISTORY_EVERY_MS;
    if (changed || historyDue) await this.refreshHistory().catch((e) => this.historyError(e));
  }

  render(s) {
    const prev = this.last;
    this.last = s;
    if (!prev) {
      this.toldSyncAt = s.lastSyncAt;
      this.untoldSince = 0;
    }
    this.renderedUnqueued = this.unqueued;
    $('status-note').hidden = true;
    setText($('st-queued'), fmtNumber(s.totalQueued));
    setText($('st-processing'), fmtNumber(s.processing));
    // a conflict's queue item ends "completed" without writing anything: it is counted as a
    // conflict, never as a completed write (the API's synced where it gives it)
    const conflicts = typeof s.conflicts === 'number' ? s.conflicts : this.ctx.openConflicts();
    const synced = typeof s.synced === 'number' ? s.synced : s.completed;
    setText($('st-completed'), fmtNumber(synced));
    setText($('st-conflicts'), fmtNumber(conflicts));
    $('st-conflicts').classList.toggle('warn', conflicts > 0);
    setText($('st-failed'), fmtNumber(s.failed));
    $('st-failed').classList.toggle('bad', s.failed > 0);
    replaceChildren($('st-unqueued'), fmtNumber(this.unqueued),
      this.unqueued ? h('small', {}, this.ctx.can('Sync') ? 'Sync now sends them' : 'someone with the Sync permission sends them (Sync now)') : null);
    setText($('st-success'), fmtPercent(s.successRate));
    setText($('st-avg'), fmtMs(s.avgSyncTime));
    this.renderTimes(s);
    const health = $('health');
    health.className = `health ${s.health || ''}`;
    // the reason behind anything but healthy, as the API gives it (healthReason)
    const r = s.health !== 'healthy' ? s.healthReason : null;
    const reason = r && r.message
      ? ` — ${r.message}${r.at ? ` (${r.code === 'no_worker' ? 'last heard' : 'checked'} ${fmtTime(r.at)})` : ''}` : '';
    setText(health, s.health ? `Health: ${HEALTH_WORDS[s.health] || s.health}${reason}` : '');
    this.ctx.titleChanged({ failed: s.failed });
    // a sync finished since the last look: tell it once the queue is idle (or after 30 s of a
    // long drain), not on the first load of an organization
    const untold = prev && s.lastSyncAt && s.lastSyncAt !== this.toldSyncAt;
    if (untold && !this.untoldSince) this.untoldSince = Date.now();
    if (untold && (!s.totalQueued && !s.processing || Date.now() - this.untoldSince > 30000)) {
      this.toldSyncAt = s.lastSyncAt;
      this.untoldSince = 0;
      const parts = [`${fmtNumber(typeof s.synced === 'number' ? s.synced : s.completed)} completed`];
      if (s.failed) parts.push(`${fmtNumber(s.failed)} failed`);
      if (s.totalQueued) parts.push(`${fmtNumber(s.totalQueued)} still queued`);
      this.ctx.toast(`Sync finished for ${this.ctx.org.code}: ${parts.join(', ')}.`, s.failed > prev.failed ? 'warn' : 'info');
    }
  }

  renderTimes(s) {
    replaceChildren($('st-last'), s.lastSyncAt ? fmtDateTime(s.lastSyncAt) : 'never',
      s.lastSyncAt ? h('small', {}, fmtRelative(s.lastSyncAt)) : null);
    const sends = s.totalQueued
      ? `sends the ${fmtNumber(s.totalQueued)} queued item${s.totalQueued === 1 ? '' : 's'}`
      : 'nothing is queued: it only pulls from PEMS';
    const unqueued = this.unqueued
      ? `; ${fmtNumber(this.unqueued)} edit${this.unqueued === 1 ? '' : 's'} not queued yet wait for Sync now` : '';
    if (this.offlineSince) {
      replaceChildren($('st-next'), 'unknown', h('small', {}, 'the service is not answering'));
      return;
    }
    const next = s.nextSyncAt ? new Date(s.nextSyncAt).getTime() : NaN;
    if (Number.isNaN(next)) {
      replaceChildren($('st-next'), 'not scheduled', h('small', {}, `the worker has not said when it runs${unqueued}`));
    } else if (next - Date.now() < 1000) {
      // a time already passed is no promise: the run is due (or running) now
      replaceChildren($('st-next'), 'due now', h('small', {}, `${sends}${unqueued}`));
    } else {
      replaceChildren($('st-next'), fmtDateTime(s.nextSyncAt), h('small', {}, `${fmtRelative(s.nextSyncAt)}, ${sends}${unqueued}`));
    }
  }

  // the API did not answer: the figures stay, marked with the time they are from; no
  // "healthy" that nobody can vouch for
  markOffline(err) {
    if (!this.offlineSince) this.offlineSince = Date.now();
    const health = $('health');
    health.className = 'health unhealthy';
    setText(health, `Not answering since ${fmtTime(this.offlineSince)}`);
    const note = $('status-note');
    setText(note, this.answeredAt
      ? `These figures are as of ${fmtTime(this.answeredAt)}, the service's last answer (${err.message}).`
      : `The service has not answered yet (${err.message}).`);
    note.hidden = false;
    if (this.last) this.renderTimes(this.last);
  }

  async syncNow() {
    const btn = $('sync-now');
    btn.disabled = true;
    try {
      const r = await this.ctx.api.post('/write-sync', { organizationId: this.ctx.org.id });
      if (r.queuedCount > 0) {
        this.ctx.toast(`Sync started: ${fmtNumber(r.queuedCount)} modification${r.queuedCount === 1 ? '' : 's'} queued for PEMS.`);
      } else {
        this.ctx.toast('Nothing to sync: no modification is waiting (pending sync).');
      }
      this.ctx.refreshSoon();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        this.ctx.toast(`Sync could not start: ${err.message}`, 'error');
      }
    } finally {
      btn.disabled = false;
    }
  }

  async refreshHistory() {
    const org = this.ctx.org;
    const bucket = $('range').value;
    const now = Date.now();
    // no `to`: the server's now, so what finished this very second is counted already
    const q = query({ organizationId: org.id, bucket, from: isoNoMs(now - RANGES[bucket]) });
    this.historyAt = now;
    const { data } = await this.ctx.api.get(`/sync-history${q}`);
    if (org !== this.ctx.org || bucket !== $('range').value) return;
    const buckets = Array.isArray(data.buckets) ? data.buckets : [];
    const key = JSON.stringify([org.id, bucket, buckets]);
    if (key === this.historyKey) return;
    this.historyKey = key;
    this.renderTable(buckets, bucket);
    const total = buckets.reduce((n, b) => n + SERIES.reduce((m, s) => m + (b[s.key] || 0), 0), 0);
    setText($('chart-state'), total === 0
      ? 'No item was synced, merged, held as a conflict or failed in this period. Choose a longer period, or press Sync now when modifications are waiting.'
      : '');
    await this.renderChart(buckets, bucket);
  }

  historyError(err) {
    if (err instanceof ApiError && err.status === 401) return;
    setText($('chart-state'), `The history could not be loaded (${err.message}). It is tried again in a few seconds.`);
  }

  renderTable(buckets, bucket) {
    const rows = buckets.map((b) => h('tr', {},
      h('th', { scope: 'row' }, fmtBucket(b.start, bucket)),
      ...SERIES.map((s) => h('td', { class: 'num' }, fmtNumber(b[s.key] || 0)))));
    replaceChildren($('history-table').tBodies[0], rows);
  }

  async renderChart(buckets, bucket) {
    let m;
    try {
      m = await loadChart();
    } catch {
      setText($('chart-state'), 'The chart library (/javascript/chart.js) could not be loaded; the numbers are in the table below.');
      return;
    }
    const labels = buckets.map((b) => fmtBucket(b.start, bucket));
    // the API counts an automatic merge in synced too: the stacked bars show each item once
    const value = (b, key) => (key === 'synced' ? Math.max(0, (b.synced || 0) - (b.merged || 0)) : b[key] || 0);
    const datasets = SERIES.map((s) => ({
      label: s.key === 'synced' ? 'Synced as edited' : s.key === 'merged' ? 'Synced, merged automatically' : s.label,
      data: buckets.map((b) => value(b, s.key)),
      backgroundColor: s.color,
      stack: 'results',
    }));
    if (this.chart) {
      this.chart.data.labels = labels;
      this.chart.data.datasets = datasets;
      this.chart.update('none');
      return;
    }
    this.chart = new m.Chart($('chart'), {
      type: 'bar',
      data: { labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        locale: navigator.language,
        scales: {
          x: { stacked: true, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    });
  }
}
