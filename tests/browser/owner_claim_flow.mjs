// The owner's claim in a real browser (Chromium), once a period with the owner's car in a
// bought product has been settled: the earnings chart per product is drawn, a privacy zone
// added from the form (submitted with the keyboard) is drawn on the map, and one click claims
// everything owed (CLAIMABLE, base units, as the gateway said); the page then owes nothing.
// Screenshots (phone and desktop) go to SHOTS_DIR. Exit code 0 only if every step did what
// it should.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, withWallet } from "./wallet.mjs";

const { GATEWAY_URL, RPC_URL, OWNER_KEY, CLAIMABLE, SHOTS_DIR } = process.env;
const TIMEOUT = 30_000;

// At desktop width, then at a phone's (390 px): the page must not be wider than the phone
// (checked always); screenshots of both when SHOTS_DIR is set.
async function shoot(page, name) {
  const size = page.viewportSize();
  if (SHOTS_DIR) await page.screenshot({ path: join(SHOTS_DIR, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) throw new Error(`${name}: the page is ${wide} px wide on a 390 px phone`);
  if (SHOTS_DIR) await page.screenshot({ path: join(SHOTS_DIR, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

const profile = mkdtempSync(join(tmpdir(), "dimo-chromium-"));
const context = await launch(profile);
try {
  await withWallet(context, OWNER_KEY, RPC_URL);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const main = page.locator("main");

  console.log("step: owner signs in; the earnings section draws the settled periods per product");
  await page.goto(`${GATEWAY_URL}/app/#/owner`);
  await page.getByRole("button", { name: "Sign in with your wallet" }).click();
  const earnings = main.locator("section", { has: page.getByRole("heading", { name: "Earnings" }) });
  await earnings.getByRole("img", { name: /^Earnings per product, in total by settled day: \d+ series/ }).waitFor();
  const owed = await earnings.locator("[data-claimable]").getAttribute("data-claimable");
  if (owed !== CLAIMABLE) throw new Error(`the page says ${owed} is owed, the gateway ${CLAIMABLE}`);

  console.log("step: owner adds a privacy zone from the form (keyboard) and sees it on the map");
  const card = main.locator("[data-vehicle]").last();
  await card.getByRole("img", { name: "Map of 0 privacy zone(s)" }).waitFor();
  await card.getByLabel("Zone name").fill("home");
  await card.getByLabel("Latitude").fill("37.7749");
  await card.getByLabel("Longitude").fill("-122.4194");
  await card.getByLabel("Radius (metres)").fill("800");
  await card.getByLabel("Radius (metres)").press("Enter");
  await main.locator("[data-vehicle]").last().getByRole("img", { name: "Map of 1 privacy zone(s)" }).waitFor();
  await shoot(page, "owner-earnings");

  console.log(`step: owner claims everything owed (${CLAIMABLE} base units) in one click`);
  await earnings.getByRole("button", { name: "Claim everything" }).click();
  await page.locator("#status").getByText(/^Claimed \d+\.\d+ DIMO/).waitFor({ timeout: 60_000 });
  for (let i = 0; ; i++) {
    // the indexer confirms the claim a block or two later: read the page again until then
    if (await earnings.getByText("Owed to you now: 0.0000 DIMO").isVisible()) break;
    if (i === 30) throw new Error("the page still shows something owed after the claim");
    await page.waitForTimeout(2000);
    await page.reload();
  }
  console.log("owner claim flow: ok");
} catch (error) {
  console.error(`owner claim flow FAILED: ${error.stack || error}`);
  for (const page of context.pages()) {
    const text = await page.locator("body").innerText().catch(() => "");
    console.error(`page ${page.url()}:\n${text.slice(-2500)}`);
  }
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
