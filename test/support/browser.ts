/**
 * Headless Chromium for the console's browser tests and bench: the system's browser (the Debian
 * package), driven by playwright-core, never a downloaded one. Each launch gets a fresh profile folder.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from './process.js';

/** Where the browser is: `MESHREG_CHROMIUM`, else the Debian package's path. */
export const CHROMIUM_PATH = process.env['MESHREG_CHROMIUM'] ?? '/usr/bin/chromium';

/** The browser exists on this machine. */
export const chromiumAvailable = (): boolean => existsSync(CHROMIUM_PATH);

/** The console's screenshots, committed with the README that shows them. */
export const SCREENSHOT_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../docs/screenshots',
);

/** A launched browser (one persistent context on its own profile) and its cleanup. */
export interface LaunchedBrowser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile, no network extras and a bounded start. */
export async function launchChromium(timeoutMs = 30_000): Promise<LaunchedBrowser> {
  const profile = await tempDir('meshreg-chromium-');
  // A fresh profile folder per launch (playwright takes it as the persistent context's folder, which
  // it passes to Chromium as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM_PATH,
    timeout: timeoutMs,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      await profile.cleanup();
    },
  };
}

/** Makes sure the screenshot folder exists; answers its path for `name`. */
export async function screenshotPath(name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, name);
}
