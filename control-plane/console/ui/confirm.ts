/**
 * The confirmation every operation goes through: a modal dialog that says what will happen, asks for
 * a reason (required: it goes to the audit log) and answers the reason, or undefined when cancelled.
 */
import { h } from './dom.js';

/** Asks to confirm `what` (one sentence); resolves with the typed reason or undefined. */
export function confirmAction(title: string, what: string): Promise<string | undefined> {
  const reason = h('textarea', {
    id: 'confirm-reason',
    name: 'reason',
    rows: 3,
    required: true,
    maxlength: 500,
    'aria-describedby': 'confirm-what',
  });
  const error = h('p', { class: 'field-error', role: 'alert' });
  const form = h(
    'form',
    { method: 'dialog', class: 'confirm' },
    h('h2', {}, title),
    h('p', { id: 'confirm-what' }, what),
    h('label', { for: 'confirm-reason' }, 'Reason (written to the audit log)'),
    reason,
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', value: 'cancel', class: 'secondary', 'data-act': 'cancel' }, 'Cancel'),
      h('button', { type: 'submit', value: 'confirm', 'data-act': 'confirm' }, 'Confirm'),
    ),
  );
  const dialog = h('dialog', { 'aria-labelledby': 'confirm-title' }, form);
  const heading = form.querySelector('h2');
  heading?.setAttribute('id', 'confirm-title');
  document.body.appendChild(dialog);
  return new Promise((resolve) => {
    let answer: string | undefined;
    form.querySelector('[data-act="cancel"]')?.addEventListener('click', () => {
      dialog.close();
    });
    form.addEventListener('submit', (e) => {
      const r = reason.value.trim();
      if (r === '') {
        e.preventDefault();
        error.textContent = 'A reason is required.';
        reason.focus();
        return;
      }
      answer = r;
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    dialog.showModal();
    reason.focus();
  });
}
