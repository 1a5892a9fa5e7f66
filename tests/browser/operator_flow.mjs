// The operator's flow in a real browser (Chromium), against a running stack where
// OPERATOR_KEY is an active operator: sign in, see the stake against the required stake,
// fill the product form (the terms preview follows it) and create the product; it is then
// listed among the operator's products; a bundle of it is created from the same form (the
// preview names its contents); the open demand signal at DEMAND_URI is answered with a product
// (its button fills the form); the members and revenue charts are drawn; the operator
// withdraws what the buyers' purchases earned it.
import { runFlow, section, shoot, signedIn, statusId, step } from "./flow.mjs";

const { OPERATOR_KEY, DEMAND_URI } = process.env;

await runFlow("operator", async (browser) => {
  step("operator signs in and sees an active stake");
  const { page, main } = await signedIn(browser, OPERATOR_KEY, "#/operator");
  await main.getByText("Active operator: your products are served.").waitFor();

  step("operator fills the product form; the preview says the terms in plain words");
  await main.getByLabel("Kind").selectOption({ label: "Stream" });
  await main.getByLabel("Price (DIMO)").fill("0.05");
  await main.getByLabel("research").check();
  await main.getByLabel("history").check();
  await main.locator(".preview").getByText("Price: 0.0500 DIMO per vehicle a month.").waitFor();
  await main.locator(".preview").getByText("Buyers may use it for: insurance, research.").waitFor();
  await main.locator(".preview").getByText(/^History: included/).waitFor();

  step("operator creates the product");
  await main.getByRole("button", { name: "Create product" }).click();
  const id = await statusId(page, "Product", "created");
  const mine = section(page, "My products");
  await mine.locator(`[data-product="${id}"]`).getByText("Price: 0.0500 DIMO per vehicle a month.").waitFor();

  step(`operator bundles product ${id} from the form; the preview names what it contains`);
  await main.getByLabel("Kind").selectOption({ label: "Bundle" });
  await main.getByLabel("Price (DIMO)").fill("0.2");
  await main.getByLabel(`Stream product #${id}`).check();
  await main.locator(".preview").getByText(`Contains: Stream #${id}.`).waitFor();
  await main.locator(".preview").getByText(/^History: included/).waitFor(); // the component's signals are covered
  await main.getByRole("button", { name: "Create bundle" }).click();
  const bundle = await statusId(page, "Product", "created", id);
  const bundleCard = mine.locator(`[data-product="${bundle}"]`);
  await bundleCard.getByText(`Bundle product #${bundle}`).waitFor();
  await bundleCard.getByText(`Contains: Stream #${id}.`).waitFor();

  step(`operator answers the demand signal at ${DEMAND_URI} with a Dataset product from the form`);
  const signal = section(page, "Open demand to answer").locator("[data-demand]", { hasText: DEMAND_URI });
  const demandId = await signal.getAttribute("data-demand");
  await signal.getByRole("button", { name: `Answer #${demandId} with a product` }).click();
  await main.getByText(`Answering demand #${demandId} (${DEMAND_URI}, budget 50.0000 DIMO)`).waitFor();
  const termsUri = await main.getByLabel("Terms document (URI)").inputValue();
  if (termsUri !== `ipfs://terms/answer-to-demand-${demandId}`) throw new Error(`the answer's terms document is ${termsUri}`);
  await main.getByLabel("Kind").selectOption({ label: "Dataset" });
  await main.getByRole("button", { name: "Create product" }).click();
  const answer = await statusId(page, "Product", "created", bundle);
  await page.locator("#status").getByText(`Product #${answer} created in answer to demand #${demandId}`).waitFor();
  await mine.locator(`[data-product="${answer}"]`).getByText(`Dataset product #${answer}`).waitFor();

  step("the members and revenue of the operator's products are drawn by day");
  const history = section(page, "Members and revenue");
  await history.getByRole("img", { name: /^Members of your products, by day: 1 series/ }).waitFor();
  await history.getByRole("img", { name: /^Revenue from your products, by day: 1 series/ }).waitFor();

  step("operator withdraws the earnings of the buyers' purchases");
  const earnings = section(page, "Earnings");
  await earnings.getByRole("button", { name: "Withdraw earnings" }).click();
  await earnings.getByText(/^Withdrew \d+\.\d+ DIMO/).waitFor({ timeout: 60_000 });
  await shoot(page, "operator");
});
