// Buyers and brokers: the catalog and open demand, a purchase with the declared use (a
// stream, API credits, a dataset or a bundle), their orders with the credits left (a bundle's:
// per Api part), dataset jobs with their result as a table and a chart, and a live stream
// plotted as it arrives (a map for location, sparklines for the rest).
import { keccak256, parseEventLogs, toHex } from "viem";
import { api, session } from "./api.js";
import { contract, read, write } from "./chain.js";
import { barChart, sparkline, trackMap } from "./charts.js";
import { USES, dimo, field, h, run, shortAddress, termsInWords, when } from "./ui.js";

const ZERO = "0x0000000000000000000000000000000000000000";
const LAT = "Vehicle.CurrentLocation.Latitude";
const LON = "Vehicle.CurrentLocation.Longitude";
let liveStream;

function ordersKey() {
  return `dimo.orders.${session.address}`;
}
function myOrders() {
  return JSON.parse(localStorage.getItem(ordersKey()) || "[]");
}
function remember(orderId) {
  localStorage.setItem(ordersKey(), JSON.stringify([...new Set([...myOrders(), orderId])]));
}
function jobsKey(orderId) {
  return `dimo.jobs.${session.address}.${orderId}`;
}
function myJobs(orderId) {
  return JSON.parse(localStorage.getItem(jobsKey(orderId)) || "[]");
}
function rememberJob(orderId, jobId) {
  localStorage.setItem(jobsKey(orderId), JSON.stringify([...new Set([...myJobs(orderId), jobId])]));
}

// Numeric signals a dataset job may aggregate (workers/signals/catalogue.py), with the bounds
// values are clamped to: narrower than the catalogue's range, so the noise is smaller.
const METRICS = [
  ["Vehicle.TraveledDistance", "Odometer (km)", [0, 300000]],
  ["Vehicle.Speed", "Speed (km/h)", [0, 250]],
  ["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "Battery charge (%)", [0, 100]],
  ["Vehicle.Powertrain.Range", "Range (m)", [0, 1000000]],
  ["Vehicle.Exterior.AirTemperature", "Outside temperature (°C)", [-40, 60]],
];
const GROUPS = ["", "make", "model", "powertrain", "region"];
// What each kind buys, and the Marketplace call with its arguments before broker/use/version/max.
const PURCHASE = {
  Stream: { label: "Vehicles", per: "vehicle a month" },
  Api: { label: "Calls", per: "call" },
  Dataset: { label: null, per: "dataset" },
  Bundle: { label: "Vehicles", per: "vehicle a month" },
};
// Kinds bought by the vehicle-month (Marketplace.subscribe).
const MONTHLY = ["Stream", "Bundle"];

export async function buyerPage(main) {
  liveStream?.abort();
  const [products, demand] = await Promise.all([api("/v1/products", { auth: false }), api("/v1/demand", { auth: false })]);
  const orders = await Promise.all(myOrders().map((id) => api(`/v1/orders/${id}`).catch(() => null)));
  main.replaceChildren(h("h2", {}, "Buy data"));
  const catalog = h("section", { class: "card", "aria-labelledby": "buy-catalog" }, h("h3", { id: "buy-catalog" }, "Catalog"));
  for (const product of products.filter((p) => p.active)) catalog.append(productOffer(product, main));
  const signals = h("section", { class: "card", "aria-labelledby": "demand" }, h("h3", { id: "demand" }, "Open demand signals"));
  signals.append(
    demand.length
      ? h("ul", { class: "plain" }, demand.map((d) => h("li", {}, `#${d.signal_id} by ${shortAddress(d.account)}: budget ${dimo(d.budget)} — ${d.uri}`)))
      : h("p", {}, "No open demand."),
  );
  const mine = h("section", { class: "card", "aria-labelledby": "orders" }, h("h3", { id: "orders" }, "My orders"));
  const live = h("div", { class: "live", "aria-live": "off" });
  if (!orders.filter(Boolean).length) mine.append(h("p", {}, "No orders yet."));
  for (const order of orders.filter(Boolean)) mine.append(orderRow(order, live));
  main.append(catalog, signals, mine, live);
}

function productOffer(product, main) {
  const lines = termsInWords(product);
  const item = h("article", { class: "product", "data-product": product.product_id }, h("h4", {}, lines[0]), h("ul", { class: "plain" }, lines.slice(1).map((l) => h("li", {}, l))));
  const permitted = USES.map((name, bit) => [bit, name]).filter(([bit]) => (product.terms.permitted_uses >> bit) & 1);
  const use = h("select", {}, ...permitted.map(([bit, name]) => h("option", { value: bit }, name)));
  const count = h("input", { type: "number", min: 1, max: product.kind === "Api" ? 1_000_000 : 10000, value: product.kind === "Api" ? 100 : 10, required: true });
  const months = h("input", { type: "number", min: 1, max: 36, value: 1, required: true });
  const out = h("output", {});
  const buy = h("button", { type: "button" }, `Buy #${product.product_id}`);
  buy.addEventListener("click", () =>
    run(buy, out, async () => {
      const monthly = MONTHLY.includes(product.kind);
      const units = monthly ? BigInt(count.value) * BigInt(months.value) : product.kind === "Api" ? BigInt(count.value) : 1n;
      const price = BigInt(product.terms.price) * units;
      const market = await contract("Marketplace");
      const allowance = await read("DimoToken", "allowance", [session.address, market.address]);
      if (allowance < price) await write("DimoToken", "approve", [market.address, price], session.address);
      const tail = [ZERO, Number(use.value), BigInt(product.version), price];
      const subscribe = ["subscribe", [BigInt(product.product_id), Number(count.value), Number(months.value), ...tail]];
      const [fn, args] = {
        Stream: subscribe,
        Bundle: subscribe,
        Api: ["buyCredits", [BigInt(product.product_id), BigInt(count.value), ...tail]],
        Dataset: ["purchaseDataset", [BigInt(product.product_id), keccak256(toHex(`dataset of product ${product.product_id} for ${USES[use.value]}`)), ...tail]],
      }[product.kind];
      const receipt = await write("Marketplace", fn, args, session.address);
      const [placed] = parseEventLogs({ abi: market.abi, logs: receipt.logs, eventName: "OrderPlaced" });
      const orderId = Number(placed.args.orderId);
      remember(orderId);
      await indexed(orderId);
      await buyerPage(main);
      const what = monthly ? `${count.value} vehicles, ${months.value} month(s)` : product.kind === "Api" ? `${count.value} calls` : "one dataset";
      return `Order #${orderId} placed: ${dimo(price)} for ${what}, for ${USES[use.value]}`;
    }),
  );
  item.append(field("Declared use", use, "What you will use the data for: the product's terms permit these."));
  if (PURCHASE[product.kind].label) item.append(field(PURCHASE[product.kind].label, count));
  if (MONTHLY.includes(product.kind)) item.append(field("Months", months));
  item.append(buy, out);
  return item;
}

// Waits (up to a minute) until the gateway's index has the order.
async function indexed(orderId) {
  for (let i = 0; i < 60; i++) {
    try {
      return await api(`/v1/orders/${orderId}`);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  throw new Error(`order #${orderId} was placed but the gateway has not indexed it yet: reload later`);
}

function orderRow(order, live) {
  const watch = h("button", { type: "button" }, `Watch order #${order.order_id}`);
  watch.addEventListener("click", () => watchStream(order, live));
  const row = h(
    "article",
    { class: "product", "data-order": order.order_id },
    h("h4", {}, `Order #${order.order_id}: ${order.kind} product #${order.product_id}`),
    h("p", {}, `${order.quantity} units, paid ${dimo(order.paid)}, for ${USES[order.use]}; ${order.status}, until ${when(order.ends_at)}.`),
    order.kind === "Stream" && order.status === "active" ? watch : null,
  );
  if (order.kind === "Api" || order.kind === "Bundle") row.append(creditsLeft(order));
  if (order.kind === "Dataset") row.append(datasetJobs(order));
  return row;
}

// The calls left on an Api order, or on each Api part of a bundle order (a bundle without
// one says nothing).
function creditsLeft(order) {
  const left = h("div", { "data-credits": "" }, "Credits left: …");
  api(`/v1/orders/${order.order_id}/credits`)
    .then((c) => {
      left.replaceChildren(h("p", {}, `Credits left: ${c.remaining} of ${c.total} calls`));
      if (order.kind === "Bundle") left.append(h("ul", { class: "plain" }, c.parts.map((p) => h("li", {}, `Api #${p.product_id}: ${p.remaining} of ${p.total} calls`))));
      left.dataset.credits = String(c.remaining);
    })
    .catch((error) => {
      if (order.kind === "Bundle" && error.reason === "wrong_kind") left.remove();
      else left.textContent = `Credits left: unknown (${error.reason || error.message})`;
    });
  return left;
}

// A dataset order's jobs: a form for a new one (metric, grouping), then each job's result as
// a table and a bar chart of the noisy means.
function datasetJobs(order) {
  const metric = h("select", {}, ...METRICS.map(([name, label]) => h("option", { value: name }, label)));
  const group = h("select", {}, ...GROUPS.map((g) => h("option", { value: g }, g || "no grouping")));
  const out = h("output", {});
  const results = h("div", { class: "jobs" });
  const submit = h("button", { type: "submit" }, `Run a dataset job on order #${order.order_id}`);
  const form = h("form", { "aria-label": `Dataset job on order #${order.order_id}` }, field("Metric", metric), field("Group by", group), submit, out);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(submit, out, async () => {
      const bounds = METRICS.find(([name]) => name === metric.value)[2];
      const body = { metric: metric.value, bounds, ...(group.value ? { group_by: group.value } : {}) };
      const job = await api(`/v1/orders/${order.order_id}/dataset`, { method: "POST", body });
      rememberJob(order.order_id, job.job_id);
      const done = await jobResult(job.job_id);
      results.prepend(jobView(done));
      return `Dataset job ${job.job_id.slice(0, 8)}…: ${done.status}`;
    });
  });
  Promise.all(myJobs(order.order_id).map((id) => api(`/v1/datasets/${id}`).catch(() => null))).then((jobs) => {
    for (const job of jobs.filter(Boolean).reverse()) results.append(jobView(job));
  });
  return h("div", {}, h("h5", {}, "Dataset jobs"), form, results);
}

// Waits (up to two minutes) for the job to finish.
async function jobResult(jobId) {
  for (let i = 0; i < 120; i++) {
    const job = await api(`/v1/datasets/${jobId}`);
    if (job.status === "done" || job.status === "refused" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`dataset job ${jobId} is still running: reload later`);
}

function jobView(job) {
  const box = h("section", { class: "job", "data-job": job.job_id, "aria-label": `Dataset job ${job.job_id}` });
  if (job.status !== "done") {
    box.append(h("p", {}, `Job ${job.job_id.slice(0, 8)}…: ${job.status}${job.reason ? ` (${job.reason}: ${job.detail || ""})` : ""}`));
    return box;
  }
  const { columns, rows, metric } = job.result;
  const label = (METRICS.find(([name]) => name === metric) || [metric, metric])[1];
  const table = h(
    "table",
    {},
    h("caption", {}, `${label}: ${rows.length} group(s), privacy loss ε ${job.epsilon} (left ${job.epsilon_remaining})`),
    h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c))),
    rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, typeof v === "number" ? Number(v.toFixed(2)) : String(v))))),
  );
  const bars = rows.map(([group, vehicles, mean, scale]) => ({ label: `${group} (${Math.round(vehicles)})`, value: mean, error: scale }));
  box.append(table, barChart(bars, `${label}, noisy mean per group`));
  return box;
}

// Reads the order's server-sent events with the bearer token (fetch: EventSource sends no
// header) and redraws the pictures on each frame.
async function watchStream(order, live) {
  liveStream?.abort();
  liveStream = new AbortController();
  const tracks = new Map();
  const series = new Map();
  let frames = 0;
  const status = h("p", { role: "status" }, "Connecting…");
  const pictures = h("div", { class: "pictures" });
  live.replaceChildren(h("section", { class: "card", "aria-labelledby": "stream" }, h("h3", { id: "stream" }, `Live: order #${order.order_id}`), status, pictures));
  const draw = () => {
    const sparks = h("div", { class: "sparks" });
    for (const [key, values] of series) sparks.append(h("div", { class: "spark" }, h("span", {}, key), sparkline(values.slice(-60), key), h("strong", {}, String(values.at(-1)))));
    pictures.replaceChildren(tracks.size ? trackMap(tracks) : h("p", {}, "No position yet."), sparks);
  };
  try {
    const answer = await fetch(`/v1/orders/${order.order_id}/stream`, { headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" }, signal: liveStream.signal });
    if (!answer.ok) {
      const problem = await answer.json();
      status.textContent = `Refused (${problem.reason}): ${problem.detail}`;
      return;
    }
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: ?(.*)$/m.exec(block)?.[1];
        const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!event || !data) continue;
        const body = JSON.parse(data);
        if (event === "open") status.textContent = `Streaming up to ${body.vehicles} vehicles every ${body.refresh} s`;
        if (event === "end") status.textContent = `Ended (${body.reason}): ${body.detail || ""}`;
        if (event !== "signals") continue;
        frames += 1;
        const byName = Object.fromEntries(body.signals.map((s) => [s.name, s.value]));
        if (typeof byName[LAT] === "number" && typeof byName[LON] === "number") {
          const track = tracks.get(body.vehicle_id) || [];
          track.push([byName[LAT], byName[LON]]);
          tracks.set(body.vehicle_id, track.slice(-200));
        }
        for (const s of body.signals) {
          if (typeof s.value !== "number" || s.name === LAT || s.name === LON) continue;
          const key = `#${body.vehicle_id} ${s.name.replace(/^Vehicle\./, "")}${s.unit ? ` (${s.unit})` : ""}`;
          series.set(key, [...(series.get(key) || []), s.value]);
        }
        status.textContent = `${frames} frame(s) received, the last at ${new Date().toLocaleTimeString()}`;
        status.dataset.frames = String(frames);
        draw();
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") status.textContent = `Stream failed: ${error.message}`;
  }
}
