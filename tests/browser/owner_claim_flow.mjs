// The owner's claim in a real browser (Chromium), once a period with the owner's car in a
// bought product has been settled: the earnings chart per product is drawn, a privacy zone
// added from the form (submitted with the keyboard) is drawn on the map, and one click claims
// everything owed (CLAIMABLE, base units, as the gateway said); the page then owes nothing.
// Screenshots (phone and desktop) go to SHOTS_DIR. Exit code 0 only if every step did what
// it should.
import { runFlow, section, shoot, signedIn, step } from "./flow.mjs";

const { OWNER_KEY, CLAIMABLE } = process.env;

await runFlow("owner claim", async (browser) => {
  step("owner signs in; the earnings section draws the settled periods per product");
  const { page, main } = await signedIn(browser, OWNER_KEY, "#/owner");
  const earnings = section(page, "Earnings");
  await earnings.getByRole("img", { name: /^Earnings per product, in total by settled day: \d+ series/ }).waitFor();
  const owed = await earnings.locator("[data-claimable]").getAttribute("data-claimable");
  if (owed !== CLAIMABLE) throw new Error(`the page says ${owed} is owed, the gateway ${CLAIMABLE}`);

  step("owner adds a privacy zone from the form (keyboard) and sees it on the map");
  const card = main.locator("[data-vehicle]").last();
  await card.getByRole("img", { name: "Map of 0 privacy zone(s)" }).waitFor();
  await card.getByLabel("Zone name").fill("home");
  await card.getByLabel("Latitude").fill("37.7749");
  await card.getByLabel("Longitude").fill("-122.4194");
  await card.getByLabel("Radius (metres)").fill("800");
  await card.getByLabel("Radius (metres)").press("Enter");
  await main.locator("[data-vehicle]").last().getByRole("img", { name: "Map of 1 privacy zone(s)" }).waitFor();
  await shoot(page, "owner-earnings");

  step(`owner claims everything owed (${CLAIMABLE} base units) in one click`);
  await earnings.getByRole("button", { name: "Claim everything" }).click();
  await page.locator("#status").getByText(/^Claimed \d+\.\d+ DIMO/).waitFor({ timeout: 60_000 });
  for (let i = 0; ; i++) {
    // the indexer confirms the claim a block or two later: read the page again until then,
    // each time once the (re)loaded page has drawn what is owed
    await earnings.getByText(/^Owed to you now: /).waitFor();
    if (await earnings.getByText("Owed to you now: 0.0000 DIMO").isVisible()) break;
    if (i === 30) throw new Error("the page still shows something owed after the claim");
    await page.waitForTimeout(2000);
    await page.reload();
  }
});
