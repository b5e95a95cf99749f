// Numbers and dates in the browser's locale (Intl with the default locale).
const number = new Intl.NumberFormat(undefined);
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const dayHour = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric' });
const dayOnly = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function fmtNumber(n) {
  return typeof n === 'number' && Number.isFinite(n) ? number.format(n) : '—';
}

export function fmtPercent(n) {
  return typeof n === 'number' && Number.isFinite(n) ? percent.format(n / 100) : '—';
}

export function fmtMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${number.format(Math.round(ms))} ms`;
  return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(ms / 1000)} s`;
}

export function fmtTime(msOrIso) {
  const d = new Date(msOrIso);
  return Number.isNaN(d.getTime()) ? '—' : timeOnly.format(d);
}

export function fmtDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

// "in 40 seconds" / "3 minutes ago", for last and next sync
export function fmtRelative(iso, now = Date.now()) {
  if (!iso) return '';
  const d = new Date(iso).getTime();
  if (Number.isNaN(d)) return '';
  const s = Math.round((d - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 60) return relative.format(s, 'second');
  if (abs < 3600) return relative.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(s / 3600), 'hour');
  return relative.format(Math.round(s / 86400), 'day');
}

export function fmtBucket(iso, bucket) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  if (bucket === 'minute') return timeOnly.format(d);
  if (bucket === 'hour') return dayHour.format(d);
  return dayOnly.format(d);
}

// a field value of a PFA record, as a person reads it
export function fmtValue(v) {
  if (v === undefined) return '(not set)';
  if (v === null) return '(empty)';
  if (typeof v === 'number') return number.format(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v === '' ? '(empty text)' : v;
  return JSON.stringify(v);
}
