// The buyer's flow in a real browser (Chromium), against a running stack where PRODUCT_ID
// (a Stream product) has a member car: sign in, buy with the declared use, and watch the live
// stream plot the car's signals as they arrive (the frame count and the pictures update).
import { APP, runFlow, shoot, signIn, step } from "./flow.mjs";

const { BUYER_KEY, PRODUCT_ID } = process.env;

await runFlow("buyer", async (browser) => {
  const { page } = await browser(BUYER_KEY);
  const main = page.locator("main");

  step("buyer signs in and opens the catalog");
  await signIn(page, `${APP}#/buyer`);
  const offer = main.locator(`[data-product="${PRODUCT_ID}"]`);
  await offer.waitFor();

  step("buyer buys a month of one vehicle's live stream, declaring its use");
  await offer.getByLabel("Declared use").selectOption({ index: 0 });
  await offer.getByLabel("Vehicles").fill("1");
  await offer.getByRole("button", { name: `Buy #${PRODUCT_ID}` }).click();
  const placed = await page.locator("#status").getByText(/^Order #\d+ placed/).textContent({ timeout: 90_000 });
  const orderId = /#(\d+)/.exec(placed)[1];

  step(`buyer watches order ${orderId}'s stream update`);
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
});
