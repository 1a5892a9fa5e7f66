// What every browser flow does around its steps: a Chromium with its own profile and a test
// wallet per key, signing in, the page checked against a phone's width with screenshots at
// desktop and phone widths (into SHOTS_DIR), and on a failure each page's text and exit code
// 1; the browsers and profiles go at the end.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, withWallet } from "./wallet.mjs";

export const APP = `${process.env.GATEWAY_URL}/app/`;
export const TIMEOUT = 30_000;
const PHONE = { width: 390, height: 844 };

export function step(text) {
  console.log(`step: ${text}`);
}

// At desktop width, then at a phone's (390 px): the page must not be wider than the phone
// (checked always); screenshots of both when SHOTS_DIR is set.
export async function shoot(page, name) {
  const { SHOTS_DIR } = process.env;
  const size = page.viewportSize();
  if (SHOTS_DIR) await page.screenshot({ path: join(SHOTS_DIR, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > PHONE.width) throw new Error(`${name}: the page is ${wide} px wide on a ${PHONE.width} px phone`);
  if (SHOTS_DIR) await page.screenshot({ path: join(SHOTS_DIR, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

// Signs in with the page's wallet (SIWE), at `url` when one is given.
export async function signIn(page, url) {
  if (url) await page.goto(url);
  await page.getByRole("button", { name: "Sign in with your wallet" }).click();
  await page.locator("#account").getByText(/^Signed in as 0x/).waitFor({ timeout: TIMEOUT });
}

// A browser whose wallet holds `key` (see runFlow), signed in at the app's `route` (e.g.
// "#/buyer"): { context, page, address, main }.
export async function signedIn(browser, key, route) {
  const opened = await browser(key);
  await signIn(opened.page, `${APP}${route}`);
  return { ...opened, main: opened.page.locator("main") };
}

// The page's <main> section headed `heading`.
export function section(page, heading) {
  return page.locator("main section", { has: page.getByRole("heading", { name: heading }) });
}

// The id in the status bar's "<what> #<id> <verb>" once it names another id than `previous`
// (the bar keeps the last message until the next one).
export async function statusId(page, what, verb, previous, timeout = 90_000) {
  const other = previous ? `(?!${previous} )` : "";
  const text = await page.locator("#status").getByText(new RegExp(`^${what} #${other}\\d+ ${verb}`)).textContent({ timeout });
  return /#(\d+)/.exec(text)[1];
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
