// The body sites the pages offer, in one place. Each is a SNOMED CT body
// structure concept without laterality: the side is chosen separately and
// travels as its own field (the server codes it as a SNOMED laterality
// qualifier on Media.bodySite), so one list serves left, right and midline.
//
// How the codes were chosen: only concepts whose code and preferred term
// we could match to published SNOMED CT usage (FHIR implementation guides,
// DICOM CID 4031 anatomic regions) are listed; every code passes the
// SNOMED CT identifier checks (partition, Verhoeff check digit) in
// webui_test.go, which catches a mistyped code but not a wrong concept.
// Where we were not sure of a finer concept (shin, sacral skin) the list
// offers the broader one we were sure of and finds it by the GP's word
// (`terms`). `display` is the concept's preferred term, filed as
// coding.display; `label` is what a GP reads and searches.
export const SNOMED = 'http://snomed.info/sct';

export const BODY_SITE_GROUPS = [
  {
    label: 'Head and neck',
    sites: [
      { code: '41695006', label: 'Scalp', display: 'Scalp structure' },
      { code: '52795006', label: 'Forehead', display: 'Forehead structure' },
      { code: '89545001', label: 'Face', display: 'Face structure', terms: ['cheek'] },
      { code: '117590005', label: 'Ear', display: 'Ear structure' },
      { code: '45206002', label: 'Nose', display: 'Nose structure' },
      { code: '48477009', label: 'Lip', display: 'Lip structure' },
      { code: '45048000', label: 'Neck', display: 'Neck structure' },
    ],
  },
  {
    label: 'Trunk',
    sites: [
      { code: '51185008', label: 'Chest', display: 'Thoracic structure', terms: ['thorax'] },
      { code: '78904004', label: 'Chest wall', display: 'Chest wall structure' },
      { code: '76752008', label: 'Breast', display: 'Breast structure' },
      { code: '91470000', label: 'Axilla', display: 'Axillary region structure', terms: ['armpit'] },
      { code: '113345001', label: 'Abdomen', display: 'Abdominal structure', terms: ['belly', 'tummy'] },
      { code: '59380008', label: 'Abdominal wall', display: 'Anterior abdominal wall structure' },
      { code: '77568009', label: 'Back', display: 'Structure of back of trunk' },
      { code: '54735007', label: 'Sacrum', display: 'Bone structure of sacrum', terms: ['sacral', 'pressure'] },
      { code: '64688005', label: 'Coccyx', display: 'Bone structure of coccyx', terms: ['tailbone'] },
      { code: '46862004', label: 'Buttock', display: 'Buttock structure', terms: ['gluteal', 'bottom'] },
      { code: '26893007', label: 'Groin', display: 'Inguinal region structure', terms: ['inguinal'] },
      { code: '38864007', label: 'Perineum', display: 'Perineal structure' },
    ],
  },
  {
    label: 'Arm',
    sites: [
      { code: '16982005', label: 'Shoulder', display: 'Shoulder region structure' },
      { code: '40983000', label: 'Upper arm', display: 'Upper arm structure' },
      { code: '127949000', label: 'Elbow', display: 'Elbow region structure' },
      { code: '14975008', label: 'Forearm', display: 'Forearm structure' },
      { code: '8205005', label: 'Wrist', display: 'Wrist region structure' },
      { code: '85562004', label: 'Hand', display: 'Hand structure', terms: ['palm'] },
      { code: '7569003', label: 'Finger', display: 'Finger structure' },
      { code: '76505004', label: 'Thumb', display: 'Thumb structure' },
    ],
  },
  {
    label: 'Leg',
    sites: [
      { code: '29836001', label: 'Hip', display: 'Hip region structure' },
      { code: '68367000', label: 'Thigh', display: 'Thigh structure' },
      { code: '72696002', label: 'Knee', display: 'Knee region structure' },
      { code: '30021000', label: 'Lower leg (shin, calf)', display: 'Lower leg structure', terms: ['shin', 'calf', 'pretibial'] },
      { code: '344001', label: 'Ankle', display: 'Ankle region structure', terms: ['malleolus'] },
      { code: '56459004', label: 'Foot', display: 'Foot structure' },
      { code: '7769000', label: 'Dorsum of foot', display: 'Structure of dorsum of foot', terms: ['top of foot'] },
      { code: '57999000', label: 'Sole of foot', display: 'Structure of sole of foot', terms: ['plantar'] },
      { code: '76853006', label: 'Heel', display: 'Heel structure' },
      { code: '29707007', label: 'Toe', display: 'Toe structure' },
      { code: '78883009', label: 'Big toe', display: 'Great toe structure', terms: ['great toe', 'hallux'] },
    ],
  },
];

// LATERALITY lists the values the API accepts; '' means not stated yet.
export const LATERALITY = [
  { value: '', label: 'Not set' },
  { value: 'left', label: 'Left' },
  { value: 'right', label: 'Right' },
  { value: 'bilateral', label: 'Both sides' },
  { value: 'not_applicable', label: 'Not applicable' },
];

const ALL_SITES = BODY_SITE_GROUPS.flatMap((g) => g.sites);
const byCode = new Map(ALL_SITES.map((s) => [s.code, s]));
const norm = (t) => String(t ?? '').trim().toLowerCase().replace(/\s+/g, ' ');

// findSites is the type-ahead: sites whose label, code or one of whose
// terms contains the text, words starting with it first.
export function findSites(text) {
  const q = norm(text);
  if (!q) return ALL_SITES.slice();
  const score = (s) => {
    const words = [s.label, ...(s.terms ?? [])].map(norm);
    if (words.some((w) => w === q) || s.code === q) return 0;
    if (words.some((w) => w.split(/[ ()]+/).some((p) => p.startsWith(q)))) return 1;
    if (words.some((w) => w.includes(q))) return 2;
    return 3;
  };
  return ALL_SITES.map((s) => [score(s), s]).filter(([n]) => n < 3).sort((a, b) => a[0] - b[0]).map(([, s]) => s);
}

// siteForText resolves what a GP typed or picked to one site: an exact
// label, code or term, or the only site the text finds. null: none or
// ambiguous.
export function siteForText(text) {
  const q = norm(text);
  if (!q) return null;
  const exact = ALL_SITES.find((s) => norm(s.label) === q || s.code === q || (s.terms ?? []).some((t) => norm(t) === q));
  if (exact) return exact;
  const found = findSites(q);
  return found.length === 1 ? found[0] : null;
}

// fillBodySiteList fills a <datalist> for the type-ahead input: the value
// is the label the GP reads, the label adds the other words it matches.
export function fillBodySiteList(list) {
  for (const s of ALL_SITES) {
    const o = document.createElement('option');
    o.value = s.label;
    o.label = [...(s.terms ?? []), `SNOMED ${s.code}`].join(' · ');
    list.append(o);
  }
}

// setBodySiteInput shows coding in a type-ahead input. A coding the list
// does not have (set by another client) is kept on the input, so it is
// shown and saved back unchanged, never silently lost.
export function setBodySiteInput(input, coding) {
  const code = coding?.code ?? '';
  delete input.dataset.code;
  delete input.dataset.system;
  delete input.dataset.display;
  if (code && !byCode.has(code)) {
    input.dataset.code = code;
    input.dataset.system = coding.system || SNOMED;
    input.dataset.display = coding.display || '';
  }
  input.value = code ? bodySiteLabel(coding) : '';
}

// bodySiteFromInput reads a type-ahead input: {coding} (null: not set),
// or {invalid: true} when the text names no site of the list.
export function bodySiteFromInput(input) {
  const text = input.value.trim();
  if (!text) return { coding: null };
  if (input.dataset.code && text === (input.dataset.display || input.dataset.code)) {
    return { coding: { system: input.dataset.system, code: input.dataset.code, display: input.dataset.display } };
  }
  const s = siteForText(text);
  return s ? { coding: bodySiteCoding(s.code) } : { invalid: true };
}

// bodySiteCoding returns the FHIR-style coding for a code from the list, or
// null for '' (not set).
export function bodySiteCoding(code) {
  const s = byCode.get(code);
  return s ? { system: SNOMED, code: s.code, display: s.display } : null;
}

// bodySiteLabel names a coding for people, also one not in this list (set
// by another client), falling back to its display.
export function bodySiteLabel(coding) {
  if (!coding || !coding.code) return '';
  return byCode.get(coding.code)?.label ?? coding.display ?? coding.code;
}

// fillLateralitySelect and fillBodySiteSelect build the options of a
// <select> with DOM calls (no innerHTML).
export function fillLateralitySelect(select) {
  for (const l of LATERALITY) select.append(new Option(l.label, l.value));
}

export function fillBodySiteSelect(select) {
  select.append(new Option('Not set', ''));
  for (const g of BODY_SITE_GROUPS) {
    const og = document.createElement('optgroup');
    og.label = g.label;
    for (const s of g.sites) og.append(new Option(s.label, s.code));
    select.append(og);
  }
}

// setBodySiteSelect selects coding's code, adding an option for a code the
// list does not have so a value set elsewhere is shown, not silently lost.
export function setBodySiteSelect(select, coding) {
  const code = coding?.code ?? '';
  if (code && !byCode.has(code) && ![...select.options].some((o) => o.value === code)) {
    const o = new Option(coding.display || code, code);
    o.dataset.system = coding.system || SNOMED;
    o.dataset.display = coding.display || '';
    select.append(o);
  }
  select.value = code;
}

// bodySiteFromSelect reads a select filled by the functions above.
export function bodySiteFromSelect(select) {
  const code = select.value;
  if (!code) return null;
  const known = bodySiteCoding(code);
  if (known) return known;
  const o = select.selectedOptions[0];
  return { system: o?.dataset.system || SNOMED, code, display: o?.dataset.display || '' };
}
