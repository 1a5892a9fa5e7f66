// Operators: stake and status against the required stake, a product or a bundle of their
// products created from a form with its terms previewed in plain words, their products,
// members and revenue over time (charts), open demand answered with a product from the form,
// and withdrawing earnings.
import { keccak256, parseEventLogs, parseUnits, toHex } from "viem";
import { api, session } from "./api.js";
import { contract, read, write } from "./chain.js";
import { timeChart } from "./charts.js";
import { PERMISSIONS, USES, dimo, field, h, run, termsInWords } from "./ui.js";

const KINDS = [
  [0, "Stream"],
  [1, "Api"],
  [2, "Dataset"],
  [3, "Bundle"],
];
const BUNDLE = 3;
const OPERATOR = 0; // Staking role
const MONTH = 30 * 86400;

export async function operatorPage(main) {
  const me = session.address;
  const [stake, required, active, earnings, products, demand, history] = await Promise.all([
    read("Staking", "stakeOf", [me]),
    read("Staking", "requiredStake", [me, OPERATOR]),
    read("Staking", "isActive", [me, OPERATOR]),
    read("Marketplace", "claimable", [me]),
    api("/v1/products", { auth: false }),
    api("/v1/demand", { auth: false }),
    api(`/v1/operators/${me}/history`, { auth: false }),
  ]);
  const own = products.filter((p) => p.operator.toLowerCase() === me.toLowerCase());
  main.replaceChildren(h("h2", {}, "Operate data products"));
  const form = productForm(main, own);
  main.append(stakePanel(stake, required, active, main), form.element, mine(own), historyPanel(history), demandPanel(demand, form.answer), earningsPanel(earnings, main));
}

function stakePanel([staked, unbonding, releaseAt], required, active, main) {
  const amount = h("input", { type: "number", min: 1, step: "any", value: 100 });
  const out = h("output", {});
  const add = h("button", { type: "button" }, "Stake");
  add.addEventListener("click", () =>
    run(add, out, async () => {
      const wei = parseUnits(amount.value, 18);
      const staking = await contract("Staking");
      await write("DimoToken", "approve", [staking.address, wei], session.address);
      await write("Staking", "stake", [wei], session.address);
      setTimeout(() => operatorPage(main), 500);
      return `Staked ${amount.value} DIMO`;
    }),
  );
  const ratio = required > 0n ? Number((staked * 1000n) / required) / 10 : 100;
  return h(
    "section",
    { class: "card", "aria-labelledby": "stake" },
    h("h3", { id: "stake" }, "Stake and status"),
    h("p", { "data-active": String(active) }, active ? "Active operator: your products are served." : "Not active: buyers are refused your products until you are whitelisted and staked enough."),
    h("dl", {}, h("dt", {}, "Staked"), h("dd", {}, dimo(staked)), h("dt", {}, "Required now (the lockup curve at your usage)"), h("dd", {}, dimo(required)), h("dt", {}, "Unbonding"), h("dd", {}, unbonding > 0n ? `${dimo(unbonding)} from ${new Date(Number(releaseAt) * 1000).toLocaleDateString()}` : "nothing")),
    h("meter", { min: 0, max: 100, low: 99.9, optimum: 100, value: Math.min(ratio, 100), "aria-label": `Stake is ${ratio}% of the required stake` }),
    h("p", {}, `${ratio}% of the required stake.`),
    field("Add stake (DIMO)", amount),
    add,
    out,
  );
}

// The operator's active products a bundle may hold, each with a box and (Api) the calls a
// month the bundle includes.
function componentPicker(products) {
  const usable = products.filter((p) => p.active && p.kind !== "Bundle");
  const rows = usable.map((p) => {
    const box = h("input", { type: "checkbox", value: p.product_id });
    const calls = p.kind === "Api" ? h("input", { type: "number", min: 1, value: 1000, "aria-label": `Calls a month of product #${p.product_id}` }) : null;
    return { product: p, box, calls, element: h("div", { class: "component" }, h("label", { class: "check" }, box, ` ${p.kind} product #${p.product_id}`), calls) };
  });
  const chosen = () => rows.filter((r) => r.box.checked).map((r) => ({ product: r.product, quantity: r.calls ? Number(r.calls.value) : 0 }));
  const element = h("fieldset", { class: "components" }, h("legend", {}, "Products in the bundle"), usable.length ? rows.map((r) => r.element) : h("p", {}, "No active product of yours to bundle yet."));
  return { element, chosen };
}

function productForm(main, own) {
  const kind = h("select", { name: "kind" }, ...KINDS.map(([v, n]) => h("option", { value: v }, n)));
  const price = h("input", { name: "price", type: "number", min: 0, step: "any", value: "0.01", required: true });
  const members = h("input", { name: "members", type: "number", min: 0, max: 95, value: 70, required: true });
  const operatorShare = h("input", { name: "operator", type: "number", min: 0, max: 95, value: 20, required: true });
  const broker = h("input", { name: "broker", type: "number", min: 0, max: 95, value: 5, required: true });
  const uses = USES.map((name, bit) => h("label", { class: "check" }, h("input", { type: "checkbox", value: 1 << bit, checked: bit === 0 }), ` ${name}`));
  const signals = PERMISSIONS.filter(([bit]) => [8, 16, 32, 256].includes(bit)).map(([bit, name]) => h("label", { class: "check" }, h("input", { type: "checkbox", value: bit, checked: bit !== 256 }), ` ${name}`));
  const refresh = h("input", { name: "refresh", type: "number", min: 0, value: 1 });
  const uri = h("input", { name: "uri", value: "ipfs://terms/my-product", required: true });
  const answering = h("p", { class: "answering", "aria-live": "polite" });
  let answered = null;
  const preview = h("ul", { class: "plain preview", "aria-live": "polite" });
  const out = h("output", {});
  const submit = h("button", { type: "submit" }, "Create product");
  const picker = componentPicker(own);
  const sum = (boxes) => boxes.reduce((acc, label) => acc + (label.firstChild.checked ? Number(label.firstChild.value) : 0), 0);
  const isBundle = () => Number(kind.value) === BUNDLE;
  // a bundle's one consent covers its components: their signals and their largest cohort
  const covered = () => (isBundle() ? picker.chosen().reduce((acc, c) => acc | Number(c.product.terms.required_permissions ?? 0), 0) : 0);
  const cohort = () => (isBundle() ? Math.max(0, ...picker.chosen().map((c) => Number(c.product.terms.min_cohort ?? 0))) : Number(kind.value) === 2 ? 5 : 0);
  const terms = () => ({
    kind: Number(kind.value),
    price: parseUnits(price.value || "0", 18),
    membersBps: Math.round(Number(members.value) * 100),
    operatorBps: Math.round(Number(operatorShare.value) * 100),
    brokerBps: Math.round(Number(broker.value) * 100),
    permittedUses: BigInt(sum(uses)),
    requiredPermissions: BigInt(sum(signals) | covered()),
    refreshSeconds: Number(refresh.value),
    minCohort: cohort(),
    termsHash: keccak256(toHex(uri.value)),
    termsURI: uri.value,
    validitySeconds: Number(kind.value) === 1 ? MONTH : 0,
  });
  const show = () => {
    const t = terms();
    const lines = termsInWords({
      kind: KINDS[t.kind][1],
      product_id: "(new)",
      operator: session.address,
      active: true,
      terms: { price: t.price, members_bps: t.membersBps, operator_bps: t.operatorBps, broker_bps: t.brokerBps, permitted_uses: Number(t.permittedUses), required_permissions: Number(t.requiredPermissions) },
      components: isBundle() ? picker.chosen().map((c) => ({ product_id: c.product.product_id, kind: c.product.kind, monthly_quantity: c.quantity })) : [],
    });
    preview.replaceChildren(...lines.slice(1).map((l) => h("li", {}, l)));
    picker.element.hidden = !isBundle();
    submit.textContent = isBundle() ? "Create bundle" : "Create product";
  };
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create" },
    h("h3", { id: "create" }, "Create a product"),
    answering,
    field("Kind", kind),
    field("Price (DIMO)", price, "Per vehicle a month (stream), per call (API) or per dataset."),
    h("fieldset", {}, h("legend", {}, "Split (%; the protocol fee is the rest)"), field("Car owners", members), field("Operator", operatorShare), field("Broker", broker)),
    h("fieldset", {}, h("legend", {}, "Buyers may use it for"), uses),
    h("fieldset", {}, h("legend", {}, "Signals"), signals),
    picker.element,
    field("Refresh (seconds)", refresh),
    field("Terms document (URI)", uri),
    h("h4", {}, "What owners and buyers will read"),
    preview,
    submit,
    out,
  );
  form.addEventListener("input", show);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(submit, out, async () => {
      const chosen = picker.chosen();
      if (isBundle() && !chosen.length) throw new Error("pick at least one of your products for the bundle");
      const receipt = isBundle()
        ? await write("DataProducts", "createBundle", [terms(), chosen.map((c) => BigInt(c.product.product_id)), chosen.map((c) => BigInt(c.quantity))], session.address)
        : await write("DataProducts", "createProduct", [terms()], session.address);
      const { abi } = await contract("DataProducts");
      const [created] = parseEventLogs({ abi, logs: receipt.logs, eventName: "ProductCreated" });
      const id = Number(created.args.productId);
      for (let i = 0; i < 60; i++) {
        // the catalog shows it once the gateway's index has the block
        if (await api(`/v1/products/${id}`, { auth: false }).catch(() => null)) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      await operatorPage(main);
      return `Product #${id} created${answered ? ` in answer to demand #${answered}` : ""}`;
    });
  });
  // Answering a demand signal: the chain keeps no link from a signal to the products that
  // answer it, so the new product's terms document is named after the signal.
  const answer = (signal) => {
    answered = signal.signal_id;
    uri.value = `ipfs://terms/answer-to-demand-${signal.signal_id}`;
    answering.textContent = `Answering demand #${signal.signal_id} (${signal.uri}, budget ${dimo(signal.budget)}): set the terms and create the product.`;
    show();
    form.scrollIntoView();
    kind.focus();
  };
  show();
  return { element: form, answer };
}

function mine(products) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "mine" },
    h("h3", { id: "mine" }, "My products"),
    products.length ? products.map((p) => h("article", { class: "product", "data-product": p.product_id }, h("h4", {}, termsInWords(p)[0]), h("ul", { class: "plain" }, termsInWords(p).slice(1).map((l) => h("li", {}, l))))) : h("p", {}, "None yet."),
  );
}

function historyPanel(history) {
  const days = history.days;
  const members = [{ name: "Member vehicles", points: days.map((d) => [d.day, d.members]) }];
  const revenue = [{ name: "Your part of the day's orders", points: days.map((d) => [d.day, Number(BigInt(d.revenue) / 10n ** 12n) / 1e6]) }];
  return h(
    "section",
    { class: "card", "aria-labelledby": "op-history" },
    h("h3", { id: "op-history" }, "Members and revenue"),
    timeChart(members, { title: "Members of your products, by day", format: (v) => String(Math.round(v)) }),
    timeChart(revenue, { title: "Revenue from your products, by day", format: (v) => `${v.toFixed(4)} DIMO` }),
  );
}

// Open demand signals, each with a button that fills the product form to answer it.
function demandPanel(demand, answer) {
  const signal = (d) => {
    const button = h("button", { type: "button" }, `Answer #${d.signal_id} with a product`);
    button.addEventListener("click", () => answer(d));
    return h("li", { "data-demand": d.signal_id }, `#${d.signal_id}: budget ${dimo(d.budget)} — ${d.uri} `, button);
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "op-demand" },
    h("h3", { id: "op-demand" }, "Open demand to answer"),
    demand.length ? h("ul", { class: "plain" }, demand.map(signal)) : h("p", {}, "No open demand."),
  );
}

function earningsPanel(earnings, main) {
  const out = h("output", {});
  const button = h("button", { type: "button", disabled: earnings === 0n }, "Withdraw earnings");
  button.addEventListener("click", () =>
    run(button, out, async () => {
      await write("Marketplace", "withdrawEarnings", [], session.address);
      setTimeout(() => operatorPage(main), 500);
      return `Withdrew ${dimo(earnings)}`;
    }),
  );
  return h("section", { class: "card", "aria-labelledby": "op-earnings" }, h("h3", { id: "op-earnings" }, "Earnings"), h("p", {}, "Not withdrawn yet: ", h("strong", {}, dimo(earnings))), button, out);
}
