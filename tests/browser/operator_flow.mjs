// The operator's flow in a real browser (Chromium), against a running stack where
// OPERATOR_KEY is an active operator: sign in, see the stake against the required stake,
// fill the product form (the terms preview follows it) and create the product; it is then
// listed among the operator's products; a bundle of it is created from the same form (the
// preview names its contents); the members and revenue charts are drawn; the operator
// withdraws what the buyers' purchases earned it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, withWallet } from "./wallet.mjs";

const { GATEWAY_URL, RPC_URL, OPERATOR_KEY, SHOTS_DIR } = process.env;
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
  await withWallet(context, OPERATOR_KEY, RPC_URL);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const main = page.locator("main");

  console.log("step: operator signs in and sees an active stake");
  await page.goto(`${GATEWAY_URL}/app/#/operator`);
  await page.getByRole("button", { name: "Sign in with your wallet" }).click();
  await main.getByText("Active operator: your products are served.").waitFor();

  console.log("step: operator fills the product form; the preview says the terms in plain words");
  await main.getByLabel("Kind").selectOption({ label: "Stream" });
  await main.getByLabel("Price (DIMO)").fill("0.05");
  await main.getByLabel("research").check();
  await main.getByLabel("history").check();
  await main.locator(".preview").getByText("Price: 0.0500 DIMO per vehicle a month.").waitFor();
  await main.locator(".preview").getByText("Buyers may use it for: insurance, research.").waitFor();
  await main.locator(".preview").getByText(/^History: included/).waitFor();

  console.log("step: operator creates the product");
  await main.getByRole("button", { name: "Create product" }).click();
  const created = await page.locator("#status").getByText(/^Product #\d+ created/).textContent({ timeout: 90_000 });
  const id = /#(\d+)/.exec(created)[1];
  const listed = main.locator("section", { has: page.getByRole("heading", { name: "My products" }) }).locator(`[data-product="${id}"]`);
  await listed.getByText("Price: 0.0500 DIMO per vehicle a month.").waitFor();

  console.log(`step: operator bundles product ${id} from the form; the preview names what it contains`);
  await main.getByLabel("Kind").selectOption({ label: "Bundle" });
  await main.getByLabel("Price (DIMO)").fill("0.2");
  await main.getByLabel(`Stream product #${id}`).check();
  await main.locator(".preview").getByText(`Contains: Stream #${id}.`).waitFor();
  await main.locator(".preview").getByText(/^History: included/).waitFor(); // the component's signals are covered
  await main.getByRole("button", { name: "Create bundle" }).click();
  // the status bar still says the product was created: wait for the next id
  const bundled = await page.locator("#status").getByText(new RegExp(`^Product #(?!${id} )\\d+ created`)).textContent({ timeout: 90_000 });
  const bundle = /#(\d+)/.exec(bundled)[1];
  const bundleCard = main.locator("section", { has: page.getByRole("heading", { name: "My products" }) }).locator(`[data-product="${bundle}"]`);
  await bundleCard.getByText(`Bundle product #${bundle}`).waitFor();
  await bundleCard.getByText(`Contains: Stream #${id}.`).waitFor();

  console.log("step: the members and revenue of the operator's products are drawn by day");
  const history = main.locator("section", { has: page.getByRole("heading", { name: "Members and revenue" }) });
  await history.getByRole("img", { name: /^Members of your products, by day: 1 series/ }).waitFor();
  await history.getByRole("img", { name: /^Revenue from your products, by day: 1 series/ }).waitFor();

  console.log("step: operator withdraws the earnings of the buyers' purchases");
  const earnings = main.locator("section", { has: page.getByRole("heading", { name: "Earnings" }) });
  await earnings.getByRole("button", { name: "Withdraw earnings" }).click();
  await earnings.getByText(/^Withdrew \d+\.\d+ DIMO/).waitFor({ timeout: 60_000 });
  await shoot(page, "operator");
  console.log("operator flow: ok");
} catch (error) {
  console.error(`operator flow FAILED: ${error.stack || error}`);
  for (const page of context.pages()) {
    const text = await page.locator("body").innerText().catch(() => "");
    console.error(`page ${page.url()}:\n${text.slice(-2000)}`);
  }
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
