// The buyer's flow in a real browser (Chromium), against a running stack where PRODUCT_ID
// (a Stream product) and DATASET_ID have a member car: sign in, buy with the declared use, and
// watch the live stream plot the car's signals as they arrive (the frame count and the
// pictures update); buy API_ID's credits (all of them left) and a dataset of DATASET_ID, run a
// dataset job and see its result as a table and a chart.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, withWallet } from "./wallet.mjs";

const { GATEWAY_URL, RPC_URL, BUYER_KEY, PRODUCT_ID, API_ID, DATASET_ID, SHOTS_DIR } = process.env;
const APP = `${GATEWAY_URL}/app/`;
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
  await withWallet(context, BUYER_KEY, RPC_URL);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const main = page.locator("main");

  console.log("step: buyer signs in and opens the catalog");
  await page.goto(`${APP}#/buyer`);
  await page.getByRole("button", { name: "Sign in with your wallet" }).click();
  await page.locator("#account").getByText(/^Signed in as 0x/).waitFor();
  const offer = main.locator(`[data-product="${PRODUCT_ID}"]`);
  await offer.waitFor();

  console.log("step: buyer buys a month of one vehicle's live stream, declaring its use");
  await offer.getByLabel("Declared use").selectOption({ index: 0 });
  await offer.getByLabel("Vehicles").fill("1");
  await offer.getByRole("button", { name: `Buy #${PRODUCT_ID}` }).click();
  const placed = await page.locator("#status").getByText(/^Order #\d+ placed/).textContent({ timeout: 90_000 });
  const orderId = /#(\d+)/.exec(placed)[1];

  console.log(`step: buyer watches order ${orderId}'s stream update`);
  await main.getByRole("button", { name: `Watch order #${orderId}` }).click();
  const status = main.locator("[data-frames]");
  await status.waitFor({ timeout: 90_000 });
  const first = Number(await status.getAttribute("data-frames"));
  await page.waitForFunction(
    (seen) => Number(document.querySelector("[data-frames]")?.dataset.frames) > seen + 1,
    first,
    { timeout: 60_000 },
  );
  await main.getByRole("img", { name: /Map of 1 vehicles/ }).waitFor();
  await shoot(page, "buyer");

  // the status bar still names the last order: wait for another id
  const placedAfter = async (previous) => {
    const text = await page.locator("#status").getByText(new RegExp(`^Order #(?!${previous} )\\d+ placed`)).textContent({ timeout: 90_000 });
    return /#(\d+)/.exec(text)[1];
  };
  console.log(`step: buyer buys 100 calls of Api product ${API_ID}; all of them are left`);
  const apiOffer = main.locator(`[data-product="${API_ID}"]`);
  await apiOffer.getByLabel("Calls").fill("100");
  await apiOffer.getByRole("button", { name: `Buy #${API_ID}` }).click();
  const apiOrder = await placedAfter(orderId);
  await main.locator(`[data-order="${apiOrder}"]`).getByText("Credits left: 100 of 100 calls").waitFor();

  console.log(`step: buyer buys a dataset of product ${DATASET_ID}, declaring its use, and runs a job`);
  const datasetOffer = main.locator(`[data-product="${DATASET_ID}"]`);
  await datasetOffer.getByLabel("Declared use").selectOption({ index: 0 });
  await datasetOffer.getByRole("button", { name: `Buy #${DATASET_ID}` }).click();
  const datasetOrder = await placedAfter(apiOrder);
  const row = main.locator(`[data-order="${datasetOrder}"]`);
  await row.getByLabel("Metric").selectOption({ label: "Odometer (km)" });
  await row.getByRole("button", { name: `Run a dataset job on order #${datasetOrder}` }).click();
  const job = row.locator("[data-job]").first();
  await job.getByRole("table").getByText(/^Odometer \(km\): 1 group\(s\)/).waitFor({ timeout: 120_000 });
  await job.getByRole("cell", { name: "all", exact: true }).waitFor();
  await job.getByRole("img", { name: "Odometer (km), noisy mean per group: 1 bar(s)" }).waitFor();
  await shoot(page, "buyer-dataset");
  console.log("buyer flow: ok");
} catch (error) {
  console.error(`buyer flow FAILED: ${error.stack || error}`);
  for (const page of context.pages()) {
    const text = await page.locator("body").innerText().catch(() => "");
    console.error(`page ${page.url()}:\n${text.slice(-1500)}`);
  }
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
