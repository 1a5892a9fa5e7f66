// The operator's flow in a real browser (Chromium), against a running stack where
// OPERATOR_KEY is an active operator: sign in, see the stake against the required stake,
// fill the product form (the terms preview follows it) and create the product; it is then
// listed among the operator's products; the operator withdraws what the buyers' purchases
// earned it.
import { APP, runFlow, shoot, signIn, step } from "./flow.mjs";

const { OPERATOR_KEY } = process.env;

await runFlow("operator", async (browser) => {
  const { page } = await browser(OPERATOR_KEY);
  const main = page.locator("main");

  step("operator signs in and sees an active stake");
  await signIn(page, `${APP}#/operator`);
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
  const created = await page.locator("#status").getByText(/^Product #\d+ created/).textContent({ timeout: 90_000 });
  const id = /#(\d+)/.exec(created)[1];
  const listed = main.locator("section", { has: page.getByRole("heading", { name: "My products" }) }).locator(`[data-product="${id}"]`);
  await listed.getByText("Price: 0.0500 DIMO per vehicle a month.").waitFor();

  step("operator withdraws the earnings of the buyers' purchases");
  const earnings = main.locator("section", { has: page.getByRole("heading", { name: "Earnings" }) });
  await earnings.getByRole("button", { name: "Withdraw earnings" }).click();
  await earnings.getByText(/^Withdrew \d+\.\d+ DIMO/).waitFor({ timeout: 60_000 });
  await shoot(page, "operator");
});
