// The owner's flow in a real browser (Chromium), against a running stack:
// sign in with the wallet, connect a car through the automaker and mint it, grant a key by
// EIP-712 signature, the key holder locks the car with it (and is refused a start), the owner
// joins a stream and a dataset product and sees what is owed (nothing yet: no period settled;
// owner_claim_flow.mjs claims once one is). Screenshots (phone and desktop) go to SHOTS_DIR.
// Exit code 0 only if every step did what it should.
import { APP, runFlow, section, shoot, signIn, step } from "./flow.mjs";

const { OWNER_KEY, HOLDER_KEY, PRODUCT_ID, DATASET_ID } = process.env;

await runFlow("owner", async (browser) => {
  const owner = await browser(OWNER_KEY);
  const holder = await browser(HOLDER_KEY);

  step("owner signs in with the wallet (SIWE)");
  await owner.page.goto(APP);
  await shoot(owner.page, "sign-in");
  await signIn(owner.page);
  await owner.page.getByRole("button", { name: "Connect a car" }).waitFor();

  step("owner connects a car through the automaker");
  await owner.page.getByLabel("Automaker").selectOption({ label: "Smartcar" });
  await owner.page.getByRole("button", { name: "Connect a car" }).click();
  // the automaker's consent page: pick the car (VIN_INDEX: which of the simulator's cars)
  await owner.page.locator("select[name=vin]").selectOption({ index: Number(process.env.VIN_INDEX || 0) });
  await owner.page.getByRole("button", { name: "Allow" }).click();
  await owner.page.getByRole("heading", { name: "Your car is connected" }).waitFor();
  await shoot(owner.page, "owner-connected");

  step("owner mints the car with the oracle's attestation");
  await owner.page.getByRole("button", { name: "Mint my car" }).click();
  await owner.page.locator("main").getByText("Minted: your car is yours on chain").waitFor();
  const card = owner.page.locator("[data-vehicle]").last();
  await card.waitFor({ timeout: 60_000 });
  const vehicleId = await card.getAttribute("data-vehicle");

  step(`owner grants ${holder.address} a lock/unlock key to vehicle ${vehicleId} by EIP-712 signature`);
  await card.getByLabel("Key holder's address").fill(holder.address);
  await card.getByRole("button", { name: "Sign and grant" }).click();
  await card.getByText(/^Key granted to/).waitFor();
  await owner.page.locator(`[data-vehicle="${vehicleId}"] table td`, { hasText: "lock, unlock" }).waitFor({ timeout: 60_000 });

  step("the key holder locks the car with the key; a start is refused with its reason");
  await signIn(holder.page, APP);
  await holder.page.getByLabel("Vehicle number").fill(vehicleId);
  const drive = section(holder.page, "A car you hold a key to");
  await drive.getByRole("button", { name: "Lock", exact: true }).click();
  await drive.getByText(`lock sent to vehicle #${vehicleId}: queued`).waitFor();
  await drive.getByRole("button", { name: "Start", exact: true }).click();
  await drive.getByText(/^Refused \(no_permission\)/).waitFor();
  await shoot(holder.page, "key-holder");

  for (const productId of [PRODUCT_ID, DATASET_ID]) {
    step(`owner joins product ${productId}`);
    const product = owner.page.locator(`[data-product="${productId}"]`);
    await product.getByRole("button", { name: `Join #${productId}` }).click();
    await product.getByText(`Vehicle #${vehicleId} joined product #${productId}`).waitFor();
    await owner.page.locator(`[data-vehicle="${vehicleId}"]`).getByRole("button", { name: `Leave #${productId}` }).waitFor({ timeout: 60_000 });
  }

  step("owner sees what is owed: nothing before a period is settled, so no claim to send");
  const earnings = section(owner.page, "Earnings");
  await earnings.getByText("Owed to you now: 0.0000 DIMO").waitFor();
  if (!(await earnings.getByRole("button", { name: "Claim everything" }).isDisabled())) throw new Error("an empty claim is offered");
  await shoot(owner.page, "owner");
});
