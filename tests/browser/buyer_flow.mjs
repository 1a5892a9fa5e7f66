// The buyer's flow in a real browser (Chromium), against a running stack where PRODUCT_ID
// (a Stream product) and DATASET_ID have a member car: sign in, buy with the declared use, and
// watch the live stream plot the car's signals as they arrive (the frame count and the
// pictures update); buy API_ID's credits (all of them left), a month of BUNDLE_ID (a bundle
// with 500 calls a month of API_ID: all of them left, shown per part) and a dataset of
// DATASET_ID, run a dataset job and see its result as a table and a chart.
import { runFlow, shoot, signedIn, statusId, step } from "./flow.mjs";

const { BUYER_KEY, PRODUCT_ID, API_ID, DATASET_ID, BUNDLE_ID } = process.env;

await runFlow("buyer", async (browser) => {
  step("buyer signs in and opens the catalog");
  const { page, main } = await signedIn(browser, BUYER_KEY, "#/buyer");
  const offer = main.locator(`[data-product="${PRODUCT_ID}"]`);
  await offer.waitFor();

  step("buyer buys a month of one vehicle's live stream, declaring its use");
  await offer.getByLabel("Declared use").selectOption({ index: 0 });
  await offer.getByLabel("Vehicles").fill("1");
  await offer.getByRole("button", { name: `Buy #${PRODUCT_ID}` }).click();
  const orderId = await statusId(page, "Order", "placed");

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

  step(`buyer buys 100 calls of Api product ${API_ID}; all of them are left`);
  const apiOffer = main.locator(`[data-product="${API_ID}"]`);
  await apiOffer.getByLabel("Calls").fill("100");
  await apiOffer.getByRole("button", { name: `Buy #${API_ID}` }).click();
  const apiOrder = await statusId(page, "Order", "placed", orderId);
  const credits = main.locator(`[data-order="${apiOrder}"] [data-credits]`);
  await credits.getByText("Credits left: 100 of 100 calls").waitFor();
  if ((await credits.innerText()).trim() !== "Credits left: 100 of 100 calls") throw new Error("an Api order's credits say more than its calls left");

  step(`buyer buys a month of one vehicle of bundle ${BUNDLE_ID}, declaring its use; its Api part's calls are all left`);
  const bundleOffer = main.locator(`[data-product="${BUNDLE_ID}"]`);
  await bundleOffer.getByLabel("Declared use").selectOption({ index: 0 });
  await bundleOffer.getByLabel("Vehicles").fill("1");
  await bundleOffer.getByLabel("Months").fill("1");
  await bundleOffer.getByRole("button", { name: `Buy #${BUNDLE_ID}` }).click();
  const bundleOrder = await statusId(page, "Order", "placed", apiOrder);
  const bundleRow = main.locator(`[data-order="${bundleOrder}"]`);
  await bundleRow.getByText(`Bundle product #${BUNDLE_ID}`).waitFor();
  await bundleRow.getByText("Credits left: 500 of 500 calls").waitFor();
  await bundleRow.getByText(`Api #${API_ID}: 500 of 500 calls`).waitFor();

  step(`buyer buys a dataset of product ${DATASET_ID}, declaring its use, and runs a job`);
  const datasetOffer = main.locator(`[data-product="${DATASET_ID}"]`);
  await datasetOffer.getByLabel("Declared use").selectOption({ index: 0 });
  await datasetOffer.getByRole("button", { name: `Buy #${DATASET_ID}` }).click();
  const datasetOrder = await statusId(page, "Order", "placed", bundleOrder);
  const row = main.locator(`[data-order="${datasetOrder}"]`);
  await row.getByLabel("Metric").selectOption({ label: "Odometer (km)" });
  await row.getByRole("button", { name: `Run a dataset job on order #${datasetOrder}` }).click();
  const job = row.locator("[data-job]").first();
  await job.getByRole("table").getByText(/^Odometer \(km\): 1 group\(s\)/).waitFor({ timeout: 120_000 });
  await job.getByRole("cell", { name: "all", exact: true }).waitFor();
  await job.getByRole("img", { name: "Odometer (km), noisy mean per group: 1 bar(s)" }).waitFor();
  await shoot(page, "buyer-dataset");
});
