// The PFA record's fields as a planner reads them (README "The dashboard"): a label in words
// beside the key, the type, and how a typed value reads. Numbers read in the browser's locale
// with Intl.NumberFormat's own separators (de-DE "1.950" = 1950, "1,5" = 1.5); a text that does
// not read as a number there is refused, never guessed.

const WORDS = {
  category: 'Category', forecastCategory: 'Forecast category', class: 'Class', areaSilo: 'Area (silo)',
  manufacturer: 'Manufacturer', model: 'Model', contract: 'Contract', equipment: 'Equipment',
  source: 'Source', dor: 'DOR', isActualized: 'Actualized', isDiscontinued: 'Discontinued',
  isFundsTransferable: 'Funds transferable', hasPlan: 'Has plan', hasActuals: 'Has actuals',
  monthlyRate: 'Monthly rate', purchasePrice: 'Purchase price',
  originalStart: 'Original start', originalEnd: 'Original end', forecastStart: 'Forecast start',
  forecastEnd: 'Forecast end', actualStart: 'Actual start', actualEnd: 'Actual end',
};
const STRINGS = ['category', 'forecastCategory', 'class', 'areaSilo', 'manufacturer', 'model', 'contract', 'equipment'];
const ENUMS = { source: ['Rental', 'Purchase'], dor: ['BEO', 'PROJECT'] };
const BOOLEANS = ['isActualized', 'isDiscontinued', 'isFundsTransferable', 'hasPlan', 'hasActuals'];
const NUMBERS = ['monthlyRate', 'purchasePrice'];
const DATES = ['originalStart', 'originalEnd', 'forecastStart', 'forecastEnd', 'actualStart', 'actualEnd'];
const REQUIRED = ['category', 'source', 'dor']; // a delta may not clear these

// every editable field, in the order the Edit dialog shows them
export const FIELD_ORDER = [...STRINGS, 'source', 'dor', ...NUMBERS, ...DATES, ...BOOLEANS];

export function kindOf(key) {
  if (NUMBERS.includes(key)) return 'number';
  if (BOOLEANS.includes(key)) return 'boolean';
  if (DATES.includes(key)) return 'date';
  if (ENUMS[key]) return 'enum';
  return 'string';
}

// "Monthly rate"; an unknown key is split at its capitals ("someNewField" -> "Some new field")
export function fieldLabel(key) {
  if (WORDS[key]) return WORDS[key];
  const s = String(key).replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function fieldHint(key) {
  switch (kindOf(key)) {
    case 'number': return `a number, as in ${numberFormat().format(1950.5)}`;
    case 'boolean': return 'yes or no';
    case 'date': return 'a date, YYYY-MM-DD';
    case 'enum': return `${ENUMS[key].join(' or ')}`;
    default: return REQUIRED.includes(key) ? 'text, required' : 'text';
  }
}

let cached = null;
function numberFormat() {
  if (!cached) cached = new Intl.NumberFormat(undefined, { maximumFractionDigits: 20 });
  return cached;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// the locale's own separators, from Intl itself
export function separators(nf = numberFormat()) {
  const parts = nf.formatToParts(1234567.5);
  return {
    group: (parts.find((p) => p.type === 'group') || { value: ',' }).value,
    decimal: (parts.find((p) => p.type === 'decimal') || { value: '.' }).value,
  };
}

// A typed number in the locale: {value} or {error}. Groups are only where the locale puts them
// (three digits each), so en-US "1,75" or de-DE "1.95" do not read: refused, not guessed.
export function parseNumber(text, nf = numberFormat()) {
  const { group, decimal } = separators(nf);
  let t = String(text).trim().replace(/\u2212/g, '-');
  // a group of spaces (fr-FR's U+202F, de-CH's ’) may be typed as a plain space
  const spaceGroup = /\s/.test(group);
  if (spaceGroup) t = t.replace(/[\s\u00a0\u202f]/g, ' ');
  // de-CH's apostrophe group: the typographic and the typewriter one alike
  const apostrophe = /^['\u2019]$/.test(group);
  if (apostrophe) t = t.replace(/\u2019/g, "'");
  const grp = apostrophe ? "'" : spaceGroup ? ' ' : group;
  const g = escapeRe(grp);
  const d = escapeRe(decimal);
  const re = new RegExp(`^(-?)(\\d{1,3}(?:${g}\\d{3})+|\\d+)?(?:${d}(\\d+))?$`);
  const m = re.exec(t);
  if (!t || !m || (m[2] === undefined && m[3] === undefined)) {
    const word = (c) => (c === '.' ? 'dot' : c === ',' ? 'comma' : /\s/.test(c) ? 'space' : `“${c}”`);
    return { error: `does not read as a number here: write it as ${nf.format(1950.5)} (${word(group)} between thousands, ${word(decimal)} before decimals)` };
  }
  const intPart = (m[2] || '0').split(grp).join('');
  const value = Number(`${m[1]}${intPart}${m[3] ? `.${m[3]}` : ''}`);
  if (!Number.isFinite(value)) return { error: 'is too large a number' };
  return { value };
}

export function formatNumber(n) {
  return numberFormat().format(n);
}

// A field's value as the planner edits it (the locale's number, yes/no, the text)
export function toInput(key, v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

// What the planner typed, in the field's JSON type: {value} or {error}. An empty box clears the
// field (null); the API decides on whether that is allowed and on every rule across fields.
export function fromInput(key, text) {
  const t = String(text).trim();
  if (t === '') return { value: null };
  switch (kindOf(key)) {
    case 'number': return parseNumber(t);
    case 'boolean':
      if (/^(yes|true|ja|y)$/i.test(t)) return { value: true };
      if (/^(no|false|nein|n)$/i.test(t)) return { value: false };
      return { error: 'write yes or no' };
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(t) ? { value: t } : { error: 'write the date as YYYY-MM-DD, e.g. 2025-11-30' };
    case 'enum': {
      const hit = ENUMS[key].find((e) => e.toLowerCase() === t.toLowerCase());
      return hit ? { value: hit } : { error: `must be ${ENUMS[key].join(' or ')}` };
    }
    default: return { value: t };
  }
}

// true when n is far outside both a and b (ten times the larger, or a tenth of the smaller):
// a slip of a separator or a digit, asked about once before it is sent
export function farOutside(n, a, b) {
  const sides = [a, b].filter((x) => typeof x === 'number' && Number.isFinite(x) && x > 0);
  if (!sides.length || typeof n !== 'number') return false;
  const hi = Math.max(...sides);
  const lo = Math.min(...sides);
  return n > hi * 10 || n < lo / 10;
}
