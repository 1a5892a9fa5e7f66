// What every browser flow does around its steps: a Chromium with its own profile and a test
// wallet per key, signing in, screenshots at desktop and phone widths (into SHOTS_DIR), and
// on a failure each page's text and exit code 1; the browsers and profiles go at the end.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, withWallet } from "./wallet.mjs";

export const APP = `${process.env.GATEWAY_URL}/app/`;
export const TIMEOUT = 30_000;

export function step(text) {
  console.log(`step: ${text}`);
}

// The page as it is now, at the desktop width and at a phone's.
export async function shoot(page, name) {
  const { SHOTS_DIR } = process.env;
  if (!SHOTS_DIR) return;
  const size = page.viewportSize();
  await page.screenshot({ path: join(SHOTS_DIR, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SHOTS_DIR, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

// Signs in with the page's wallet (SIWE), at `url` when one is given.
export async function signIn(page, url) {
  if (url) await page.goto(url);
  await page.getByRole("button", { name: "Sign in with your wallet" }).click();
  await page.locator("#account").getByText(/^Signed in as 0x/).waitFor({ timeout: TIMEOUT });
}

// Runs `steps(browser)`, where `browser(key)` opens a Chromium whose wallet holds `key` and
// gives { context, page, address }; prints "<name> flow: ok", or the failure and every page's
// text (exit code 1).
export async function runFlow(name, steps) {
  const opened = [];
  async function browser(key) {
    const profile = mkdtempSync(join(tmpdir(), "dimo-chromium-"));
    const context = await launch(profile);
    opened.push({ context, profile });
    const address = await withWallet(context, key, process.env.RPC_URL);
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(TIMEOUT);
    return { context, page, address };
  }
  try {
    await steps(browser);
    console.log(`${name} flow: ok`);
  } catch (error) {
    console.error(`${name} flow FAILED: ${error.stack || error}`);
    for (const { context } of opened) {
      for (const page of context.pages()) {
        const text = await page.locator("body").innerText().catch(() => "");
        console.error(`page ${page.url()}:\n${text.slice(-2000)}`);
      }
    }
    process.exitCode = 1;
  } finally {
    for (const { context, profile } of opened) {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  }
}
