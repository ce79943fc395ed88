// The patient the desktop works for: shown in the header (name, NHI, date
// of birth), named on the File button, and required before a session can
// start: without a name and an NHI the phone would have nothing to check
// the patient against (issue 15).
import { $ } from './dom.js';
import { fillPatient } from './patient.js';

// missingPatient returns why ctx cannot start a session, or ''.
export function missingPatient(ctx) {
  const missing = [];
  if (!ctx.patientDisplay) missing.push("the patient's name");
  if (!ctx.patientNhi) missing.push('the NHI');
  if (!missing.length) return '';
  return `The patient record did not give ${missing.join(' or ')}, so the phone could not show whom the photos are for.`;
}

// refuseStart shows why no session was started.
export function refuseStart(reason) {
  $('#patient-missing-text').textContent = reason;
  $('#patient-missing').hidden = false;
}

// showPatient fills the header from the hand-over context.
export function showPatient(ctx) {
  const p = $('#patient');
  fillPatient(p, { name: ctx.patientDisplay, nhi: ctx.patientNhi, dob: ctx.patientDob });
  p.hidden = !ctx.patientDisplay && !ctx.patientNhi;
}

// fileLabel names the patient on the File button: "File 2 photos to Jane
// Doe (ABC1234)".
export function fileLabel(n, ctx) {
  const photos = `${n} photo${n === 1 ? '' : 's'}`;
  if (!ctx?.patientDisplay) return `File ${photos} to record`;
  return `File ${photos} to ${ctx.patientDisplay}${ctx.patientNhi ? ` (${ctx.patientNhi})` : ''}`;
}

// PhoneAlert is the red alert a phone's "wrong patient" raises.
export class PhoneAlert {
  constructor() {
    this.box = $('#phone-alert');
    $('#phone-alert-dismiss').addEventListener('click', () => { this.box.hidden = true; });
  }

  show() {
    this.box.hidden = false;
  }
}
