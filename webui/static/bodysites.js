// The body sites the pages offer, in one place. Each is a SNOMED CT body
// structure concept without laterality: the side is chosen separately and
// travels as its own field (the server codes it as a SNOMED laterality
// qualifier on Media.bodySite), so one list serves left, right and midline.
//
// Codes checked against published SNOMED CT usage (FHIR implementation
// guides, DICOM CID 4031 anatomic region lists); `display` is the concept's
// preferred term, `label` is what a GP reads in the select.
export const SNOMED = 'http://snomed.info/sct';

export const BODY_SITE_GROUPS = [
  {
    label: 'Head and neck',
    sites: [
      { code: '41695006', label: 'Scalp', display: 'Scalp structure' },
      { code: '52795006', label: 'Forehead', display: 'Forehead structure' },
      { code: '89545001', label: 'Face', display: 'Face structure' },
      { code: '117590005', label: 'Ear', display: 'Ear structure' },
      { code: '45206002', label: 'Nose', display: 'Nose structure' },
      { code: '48477009', label: 'Lip', display: 'Lip structure' },
      { code: '45048000', label: 'Neck', display: 'Neck structure' },
    ],
  },
  {
    label: 'Trunk',
    sites: [
      { code: '78904004', label: 'Chest wall', display: 'Chest wall structure' },
      { code: '59380008', label: 'Abdominal wall', display: 'Anterior abdominal wall structure' },
      { code: '77568009', label: 'Back', display: 'Structure of back of trunk' },
      { code: '46862004', label: 'Buttock', display: 'Buttock structure' },
      { code: '26893007', label: 'Groin', display: 'Inguinal region structure' },
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
      { code: '85562004', label: 'Hand', display: 'Hand structure' },
      { code: '7569003', label: 'Finger', display: 'Finger structure' },
    ],
  },
  {
    label: 'Leg',
    sites: [
      { code: '29836001', label: 'Hip', display: 'Hip region structure' },
      { code: '68367000', label: 'Thigh', display: 'Thigh structure' },
      { code: '72696002', label: 'Knee', display: 'Knee region structure' },
      { code: '30021000', label: 'Lower leg', display: 'Lower leg structure' },
      { code: '344001', label: 'Ankle', display: 'Ankle region structure' },
      { code: '56459004', label: 'Foot', display: 'Foot structure' },
      { code: '76853006', label: 'Heel', display: 'Heel structure' },
      { code: '29707007', label: 'Toe', display: 'Toe structure' },
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

const byCode = new Map(BODY_SITE_GROUPS.flatMap((g) => g.sites.map((s) => [s.code, s])));

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
