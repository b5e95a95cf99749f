// "Are you sure?" once, before an action on several items: a native modal <dialog>. Resolves
// true when the planner confirms, false on "Go back" or Esc; focus returns where it was.
import { $, setText } from './dom.js';

let pending = null;

export function confirmOnce(title, message, yesLabel) {
  const dlg = $('confirm-dialog');
  if (pending) pending(false);
  setText($('confirm-h'), title);
  setText($('confirm-msg'), message);
  setText($('confirm-yes'), yesLabel);
  const back = document.activeElement;
  return new Promise((resolve) => {
    pending = (yes) => {
      pending = null;
      if (dlg.open) dlg.close();
      if (!yes && back && back.isConnected) back.focus();
      resolve(yes);
    };
    dlg.showModal();
    $('confirm-no').focus();
  });
}

export function initConfirm() {
  const dlg = $('confirm-dialog');
  $('confirm-yes').addEventListener('click', () => pending && pending(true));
  $('confirm-no').addEventListener('click', () => pending && pending(false));
  dlg.addEventListener('close', () => pending && pending(false));
}
