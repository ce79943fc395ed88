// How both pages name the patient: the name, the NHI and the date of birth
// together, so the GP checks one person against another on more than a
// name (issue 15). Dates come as YYYY-MM-DD and are shown as "12 Mar 1960",
// read without a time zone so a date never shifts by a day.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// formatDob renders YYYY-MM-DD as "12 Mar 1960", or '' for anything else.
export function formatDob(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso ?? '');
  if (!m || +m[2] < 1 || +m[2] > 12) return '';
  return `${+m[3]} ${MONTHS[+m[2] - 1]} ${m[1]}`;
}

// patientQuestion is the phone's confirm question: "Is this Jane Doe, NHI
// ABC1234, born 12 Mar 1960?" (the parts the session has).
export function patientQuestion({ name, nhi, dob }) {
  const parts = [name || 'this patient'];
  if (nhi) parts.push(`NHI ${nhi}`);
  const born = formatDob(dob);
  if (born) parts.push(`born ${born}`);
  return `Is this ${parts.join(', ')}?`;
}

// fillPatient writes name, NHI and DOB into a block that has
// [data-role=name], [data-role=nhi] and [data-role=dob] children; a
// missing part hides its line.
export function fillPatient(root, { name, nhi, dob }) {
  const set = (role, text) => {
    const node = root.querySelector(`[data-role="${role}"]`);
    if (!node) return;
    node.textContent = text;
    node.hidden = !text;
  };
  set('name', name || '');
  set('nhi', nhi ? `NHI ${nhi}` : '');
  const born = formatDob(dob);
  set('dob', born ? `Born ${born}` : '');
}
