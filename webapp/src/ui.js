// Small DOM helpers: elements from data (never HTML strings), status messages, plain words.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldIds = 0;

// A labelled form field: the label names the control (accessibility).
export function field(label, control, hint) {
  const id = control.id || `f${++fieldIds}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint && h("small", { id: hintId }, hint));
}

export function say(text, kind = "info") {
  const box = document.getElementById("status");
  box.textContent = text;
  box.dataset.kind = kind;
}

// Runs `action` for a button: disabled meanwhile, its outcome (or the refusal and its
// reason) written into `out` and announced.
export async function run(button, out, action) {
  button.disabled = true;
  out.textContent = "Working…";
  out.dataset.kind = "info";
  try {
    const text = await action();
    out.textContent = text;
    out.dataset.kind = "ok";
    say(text, "ok");
  } catch (error) {
    const text = error.reason ? `Refused (${error.reason}): ${error.message}` : `Failed: ${shortError(error)}`;
    out.textContent = text;
    out.dataset.kind = "error";
    say(text, "error");
  } finally {
    button.disabled = false;
  }
}

function shortError(error) {
  return (error.shortMessage || error.message || String(error)).split("\n")[0];
}

export const PERMISSIONS = [
  [1, "lock"],
  [2, "unlock"],
  [4, "drive (remote start)"],
  [8, "telemetry"],
  [16, "location"],
  [32, "live"],
  [64, "VIN"],
  [128, "manage keys"],
  [256, "history"],
];

export const USES = ["insurance", "research", "fleet management", "marketing", "resale", "public good"];

export function bitsInWords(bits, names) {
  const words = names.filter(([bit]) => (Number(bits) & bit) !== 0).map(([, name]) => name);
  return words.length ? words.join(", ") : "nothing";
}

export function usesInWords(mask) {
  return bitsInWords(mask, USES.map((name, i) => [1 << i, name]));
}

export function dimo(wei) {
  const value = BigInt(wei ?? 0);
  const whole = value / 10n ** 18n;
  const cents = (value % 10n ** 18n) / 10n ** 14n;
  return `${whole}.${cents.toString().padStart(4, "0")} DIMO`;
}

export function shortAddress(address) {
  return address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "";
}

export function when(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString();
}

// A product's terms in plain words.
export function termsInWords(product) {
  const t = product.terms;
  const per = { Api: "per call", Stream: "per vehicle a month", Dataset: "per dataset", Bundle: "a month" }[product.kind] || "";
  return [
    `${product.kind} product #${product.product_id} by ${shortAddress(product.operator)}${product.active ? "" : " (inactive)"}`,
    `Price: ${dimo(t.price)} ${per}.`,
    `Split: car owners ${(t.members_bps ?? 0) / 100}%, operator ${(t.operator_bps ?? 0) / 100}%, broker ${(t.broker_bps ?? 0) / 100}%.`,
    `Buyers may use it for: ${usesInWords(t.permitted_uses ?? 0)}.`,
    `Signals: ${bitsInWords(t.required_permissions ?? 0, PERMISSIONS.filter(([bit]) => bit !== 256))}.`,
    (Number(t.required_permissions ?? 0) & 256) !== 0
      ? "History: included — buyers see the car's data since you bought it."
      : "History: not included — buyers see data from the day you join.",
    ...(product.components?.length
      ? [`Contains: ${product.components.map((c) => `${c.kind || "product"} #${c.product_id}${c.monthly_quantity ? ` (${c.monthly_quantity} calls a month)` : ""}`).join(", ")}.`]
      : []),
  ];
}
