/**
 * What every page gets from the shell: who the caller is (so write controls are enabled only for a
 * write token), a way to run a confirmed operation, and a status line. Pages are built by a factory
 * and re-fetch their data on `refresh` when a live `changed` event names one of their parts.
 */
import type { ConsoleCaller, ConsolePart } from '../../../proto/console.js';
import type { ApiResult } from './api.js';
import { confirmAction } from './confirm.js';
import { h } from './dom.js';
import type { Route } from './router.js';

/** The shell's services to a page. */
export interface App {
  /** The caller the last overview named (anonymous/read until then). */
  caller(): ConsoleCaller;
  /** The caller may write: write controls are enabled. */
  writable(): boolean;
  /** Shows a short message in the page's status line (operations' results). */
  say(message: string, isError?: boolean): void;
}

/** A mounted page. */
export interface Page {
  /** The `changed` parts that make it re-fetch. */
  readonly parts: readonly ConsolePart[];
  /** Fetches its data again and redraws what changed (inputs keep their focus). */
  refresh(): Promise<void>;
}

/** Builds a page into `main`. */
export type PageFactory = (main: HTMLElement, route: Route, app: App) => Page;

/**
 * A button that runs a write operation: disabled (with a title saying why) for a read-only caller;
 * otherwise asks for confirmation and a reason, then runs `act(reason)` and reports the outcome.
 */
export function writeButton(
  app: App,
  label: string,
  confirm: { title: string; what: string },
  act: (reason: string) => Promise<ApiResult<unknown>>,
  after?: () => void,
  cls = '',
): HTMLButtonElement {
  const writable = app.writable();
  const button = h(
    'button',
    {
      type: 'button',
      class: cls,
      'data-write': '',
      'data-key': `${label}|${confirm.what}`,
      disabled: !writable,
      title: writable ? confirm.what : 'Read-only: enter an admin token with write access',
    },
    label,
  );
  button.addEventListener('click', () => {
    void runConfirmed(app, confirm, act).then((done) => {
      if (done) after?.();
    });
  });
  return button;
}

/** Confirms, runs and reports; true when the operation succeeded. */
export async function runConfirmed(
  app: App,
  confirm: { title: string; what: string },
  act: (reason: string) => Promise<ApiResult<unknown>>,
): Promise<boolean> {
  const reason = await confirmAction(confirm.title, confirm.what);
  if (reason === undefined) return false;
  const r = await act(reason);
  if (r.ok) app.say(`${confirm.title}: done.`);
  else app.say(`${confirm.title} failed: ${r.status} ${r.code}: ${r.message}`, true);
  return r.ok;
}

/** A badge for a status word (`passing`, `critical`, `up`, `down`, `draining`, `offline`…). */
export const badge = (word: string, cls = word): HTMLElement => h('span', { class: `badge ${cls}` }, word);

/** An error box for a failed read. */
export const failed = (what: string, r: { status: number; code: string; message: string }): HTMLElement =>
  h('p', { class: 'error', role: 'alert' }, `Could not load ${what}: ${r.status} ${r.code}: ${r.message}`);
