// The prompt before filing photos that have no body site (issue 15). A
// photo filed without one is hard to find again in the record, so the GP
// is asked, in the page (a modal <dialog>: focus moves into it, Escape
// cancels, the rest of the page is inert), whether to add sites first.
// "Add body sites" is the default and returns focus to the first photo
// that lacks one; "File without site" files as asked.
import { $ } from './dom.js';

// confirmNoSite resolves true when filing should go ahead: every card has
// a site, or the GP chose to file without. cards are the cards lacking a
// site.
export function confirmNoSite(cards) {
  if (!cards.length) return Promise.resolve(true);
  const dialog = $('#nosite-dialog');
  const n = cards.length;
  $('#nosite-text').textContent = n === 1
    ? `Photo ${cards[0].index} has no body site. Add one so the photo can be found in the record, or file it without.`
    : `${n} photos have no body site (${cards.map((c) => c.index).join(', ')}). Add them so the photos can be found in the record, or file them without.`;
  return new Promise((resolve) => {
    const done = (ok) => {
      $('#nosite-add').removeEventListener('click', onAdd);
      $('#nosite-file').removeEventListener('click', onFile);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      if (!ok) cards[0].bodysite.focus();
      resolve(ok);
    };
    const onAdd = () => done(false);
    const onFile = () => done(true);
    const onCancel = (e) => { e.preventDefault(); done(false); };
    $('#nosite-add').addEventListener('click', onAdd);
    $('#nosite-file').addEventListener('click', onFile);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
  });
}
