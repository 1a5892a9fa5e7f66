// Owners: their cars, keys granted by an EIP-712 signature and revoked, commands through
// the gateway, connecting a car through the automaker then minting it, products to join and
// leave, privacy zones on a map, earnings per product over time, and one claim of everything
// owed.
import { api, session } from "./api.js";
import { chain, read, signTypedData, write } from "./chain.js";
import { timeChart, zoneMap } from "./charts.js";
import { PERMISSIONS, bitsInWords, dimo, field, h, run, shortAddress, termsInWords, when } from "./ui.js";

const ZERO32 = `0x${"0".repeat(64)}`;
const KEY_BITS = PERMISSIONS.filter(([bit]) => bit <= 4);
const CONNECTIONS = [
  [1, "Smartcar"],
  [2, "Tesla"],
];

export async function ownerPage(main, params) {
  const address = session.address;
  // built aside and swapped in at once: a refresh never empties the page meanwhile
  const top = [h("h2", {}, "My cars")];
  if (params.get("connection_id") || params.get("error")) top.push(mintPanel(params, address));
  const [vehicles, products, claim, earnings] = await Promise.all([
    api("/v1/vehicles"),
    api("/v1/products", { auth: false }),
    api(`/v1/members/${address}/claims`, { auth: false }),
    api(`/v1/members/${address}/earnings`, { auth: false }),
  ]);
  const cars = h("div", { class: "cards" });
  if (!vehicles.length) cars.append(h("p", {}, "No car yet: connect one below."));
  for (const vehicle of vehicles) cars.append(await carCard(vehicle, products, address, main, params));
  main.replaceChildren(...top, cars, connectPanel(), commandPanel(), catalogPanel(products, vehicles, address, main, params), claimPanel(claim, earnings, address, main, params));
}

function refresh(main, params) {
  // The indexer confirms a transaction a block or two after it is mined: read again until then.
  for (const delay of [1500, 3500, 6000]) setTimeout(() => ownerPage(main, params).catch(() => {}), delay);
}

async function carCard(vehicle, products, address, main, params) {
  const id = vehicle.vehicle_id;
  const consents = await api(`/v1/vehicles/${id}/consents`);
  const name = [vehicle.make, vehicle.model].filter(Boolean).join(" ") || "Vehicle";
  const card = h(
    "section",
    { class: "card", "aria-labelledby": `car-${id}`, "data-vehicle": id },
    h("h3", { id: `car-${id}` }, `${name} #${id}`),
    h(
      "dl",
      {},
      h("dt", {}, "Connection"),
      h("dd", {}, vehicle.connection ? `${vehicle.connection} (#${vehicle.connection_id})` : "none"),
      h("dt", {}, "Paired device"),
      h("dd", {}, vehicle.device_id === null ? "none" : `#${vehicle.device_id}`),
    ),
  );
  // keys
  const keys = h("table", {}, h("caption", {}, "Keys"), h("tr", {}, h("th", { scope: "col" }, "Holder"), h("th", { scope: "col" }, "May"), h("th", { scope: "col" }, "Until"), h("th", { scope: "col" }, h("span", { class: "sr" }, "Actions"))));
  for (const key of consents.keys) {
    const out = h("output", {});
    const revoke = h("button", { type: "button", class: "secondary", "aria-label": `Revoke the key of ${key.grantee}` }, "Revoke");
    revoke.addEventListener("click", () =>
      run(revoke, out, async () => {
        await write("VehicleId", "revoke", [BigInt(id), key.grantee], address);
        refresh(main, params);
        return `Key of ${shortAddress(key.grantee)} revoked`;
      }),
    );
    keys.append(h("tr", {}, h("td", { class: "mono" }, shortAddress(key.grantee)), h("td", {}, bitsInWords(key.permissions, PERMISSIONS)), h("td", {}, when(key.expires_at)), h("td", {}, revoke, out)));
  }
  if (!consents.keys.length) keys.append(h("tr", {}, h("td", { colspan: 4 }, "No keys.")));
  card.append(keys, grantForm(id, address, main, params), commandButtons(id));
  // products
  const joined = new Set(consents.products.map((p) => p.product_id));
  const list = h("ul", { class: "plain" });
  for (const product of products.filter((p) => joined.has(p.product_id))) {
    const out = h("output", {});
    const leave = h("button", { type: "button", class: "secondary" }, `Leave #${product.product_id}`);
    leave.addEventListener("click", () =>
      run(leave, out, async () => {
        await write("DataProducts", "leave", [BigInt(product.product_id), BigInt(id)], address);
        refresh(main, params);
        return `Left product #${product.product_id}`;
      }),
    );
    list.append(h("li", {}, `${product.kind} product #${product.product_id} `, leave, out));
  }
  card.append(h("h4", {}, "In products"), joined.size ? list : h("p", {}, "None yet: join one from the catalog."));
  card.append(await zonesPanel(id, main, params));
  return card;
}

function grantForm(vehicleId, address, main, params) {
  const grantee = h("input", { name: "grantee", required: true, pattern: "0x[0-9a-fA-F]{40}", placeholder: "0x…", autocomplete: "off" });
  const days = h("input", { name: "days", type: "number", min: 1, max: 3650, value: 30, required: true });
  const boxes = KEY_BITS.map(([bit, name]) => h("label", { class: "check" }, h("input", { type: "checkbox", value: bit, checked: bit !== 4 }), ` ${name}`));
  const out = h("output", {});
  const submit = h("button", { type: "submit" }, "Sign and grant");
  const form = h(
    "form",
    { class: "grant", "aria-label": `Grant a key to vehicle ${vehicleId}` },
    h("h4", {}, "Grant a key"),
    field("Key holder's address", grantee),
    h("fieldset", {}, h("legend", {}, "They may"), boxes),
    field("For (days)", days),
    submit,
    out,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const bits = boxes.reduce((sum, label) => sum + (label.firstChild.checked ? Number(label.firstChild.value) : 0), 0);
    run(submit, out, async () => {
      if (!bits) throw new Error("choose at least one permission");
      await grantBySignature(vehicleId, grantee.value.trim(), bits, Number(days.value), address);
      refresh(main, params);
      return `Key granted to ${shortAddress(grantee.value.trim())}: ${bitsInWords(bits, PERMISSIONS)}`;
    });
  });
  return form;
}

// The owner signs the EIP-712 Grant (DESIGN.md §3.7) with the wallet; the wallet then sends
// VehicleId.grantBySig with it (any relayer could send the same signature).
async function grantBySignature(vehicleId, grantee, permissions, days, owner) {
  const { config } = await chain();
  const vehicleContract = config.contracts.VehicleId.address;
  const generation = await read("VehicleId", "generation", [BigInt(vehicleId)]);
  const now = Math.floor(Date.now() / 1000);
  const random = crypto.getRandomValues(new Uint32Array(2));
  const message = {
    vehicleId: BigInt(vehicleId),
    generation,
    grantee,
    permissions: BigInt(permissions),
    expiresAt: BigInt(now + days * 86400),
    termsHash: ZERO32,
    nonce: (BigInt(random[0]) << 32n) | BigInt(random[1]),
    deadline: BigInt(now + 3600),
  };
  const signature = await signTypedData(owner, {
    domain: { name: "DIMO Vehicle", version: "1", chainId: config.chain_id, verifyingContract: vehicleContract },
    primaryType: "Grant",
    types: {
      Grant: [
        { name: "vehicleId", type: "uint256" },
        { name: "generation", type: "uint64" },
        { name: "grantee", type: "address" },
        { name: "permissions", type: "uint256" },
        { name: "expiresAt", type: "uint64" },
        { name: "termsHash", type: "bytes32" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    message,
  });
  await write(
    "VehicleId",
    "grantBySig",
    [message.vehicleId, grantee, message.permissions, message.expiresAt, ZERO32, owner, message.nonce, message.deadline, signature],
    owner,
  );
}

function commandButtons(vehicleId) {
  const out = h("output", {});
  const buttons = ["lock", "unlock", "start"].map((command) => {
    const button = h("button", { type: "button", "aria-label": `${command} vehicle ${vehicleId}` }, command[0].toUpperCase() + command.slice(1));
    button.addEventListener("click", () => run(button, out, () => sendCommand(vehicleId, command)));
    return button;
  });
  return h("div", { class: "commands", role: "group", "aria-label": "Commands" }, ...buttons, out);
}

async function sendCommand(vehicleId, command) {
  const accepted = await api(`/v1/vehicles/${vehicleId}/commands/${command}`, { method: "POST" });
  return `${command} sent to vehicle #${vehicleId}: ${accepted.status}`;
}

function commandPanel() {
  const vehicle = h("input", { name: "vehicle", type: "number", min: 0, required: true });
  const out = h("output", {});
  const buttons = ["lock", "unlock", "start"].map((command) => {
    const button = h("button", { type: "button" }, command[0].toUpperCase() + command.slice(1));
    button.addEventListener("click", () =>
      run(button, out, async () => {
        if (vehicle.value === "") throw new Error("enter the vehicle's number");
        return sendCommand(Number(vehicle.value), command);
      }),
    );
    return button;
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "drive" },
    h("h3", { id: "drive" }, "A car you hold a key to"),
    field("Vehicle number", vehicle, "The owner's key says what you may do: lock, unlock or start."),
    h("div", { class: "commands", role: "group", "aria-label": "Commands" }, ...buttons),
    out,
  );
}

function connectPanel() {
  const which = h("select", { name: "connection" }, ...CONNECTIONS.map(([id, name]) => h("option", { value: id }, name)));
  const out = h("output", {});
  const go = h("button", { type: "button" }, "Connect a car");
  go.addEventListener("click", () =>
    run(go, out, async () => {
      const started = await api(`/v1/oem/${which.value}/authorize`);
      location.assign(started.authorize_url);
      return "Opening the automaker's consent page…";
    }),
  );
  return h(
    "section",
    { class: "card", "aria-labelledby": "connect" },
    h("h3", { id: "connect" }, "Connect a car"),
    h("p", {}, "Sign in at your car's maker and allow DIMO; you come back here to mint the car to your wallet."),
    field("Automaker", which),
    go,
    out,
  );
}

function mintPanel(params, address) {
  const out = h("output", {});
  const panel = h("section", { class: "card notice", "aria-labelledby": "mint" }, h("h3", { id: "mint" }, "Your car is connected"));
  if (params.get("error")) {
    panel.firstChild.textContent = "The car could not be connected";
    panel.append(h("p", { role: "alert" }, `Refused (${params.get("error")}): ${params.get("detail") || ""}`));
    return panel;
  }
  if (params.get("vehicle_id")) {
    panel.append(h("p", {}, `It is already minted to you as vehicle #${params.get("vehicle_id")}.`));
    return panel;
  }
  const mint = h("button", { type: "button" }, "Mint my car");
  mint.addEventListener("click", () =>
    run(mint, out, async () => {
      await write(
        "VehicleId",
        "mintWithAttestation",
        [params.get("to"), BigInt(params.get("connection_id")), params.get("vin_hash"), BigInt(params.get("nonce")), BigInt(params.get("deadline")), params.get("signature")],
        address,
      );
      history.replaceState(null, "", "#/owner");
      setTimeout(() => window.dispatchEvent(new HashChangeEvent("hashchange")), 2000);
      return "Minted: your car is yours on chain";
    }),
  );
  panel.append(h("p", {}, `The automaker's oracle attested the car to ${shortAddress(params.get("to"))}. Mint it with your wallet:`), mint, out);
  return panel;
}

function catalogPanel(products, vehicles, address, main, params) {
  const section = h("section", { class: "card", "aria-labelledby": "catalog" }, h("h3", { id: "catalog" }, "Data products"));
  const joinable = products.filter((p) => p.active && p.kind !== "Bundle");
  if (!joinable.length) section.append(h("p", {}, "No product to join yet."));
  for (const product of products) {
    const item = h("article", { class: "product", "data-product": product.product_id }, h("h4", {}, termsInWords(product)[0]), h("ul", { class: "plain" }, termsInWords(product).slice(1).map((line) => h("li", {}, line))));
    if (vehicles.length && product.active) {
      const car = h("select", {}, ...vehicles.map((v) => h("option", { value: v.vehicle_id }, `#${v.vehicle_id} ${v.make || ""} ${v.model || ""}`)));
      const out = h("output", {});
      const join = h("button", { type: "button" }, `Join #${product.product_id}`);
      join.addEventListener("click", () =>
        run(join, out, async () => {
          await write("DataProducts", "join", [BigInt(product.product_id), BigInt(car.value)], address);
          refresh(main, params);
          return `Vehicle #${car.value} joined product #${product.product_id}`;
        }),
      );
      item.append(field("With my car", car), join, out);
    }
    section.append(item);
  }
  return section;
}

// The car's privacy zones on a map, each removable, and a form to add one.
async function zonesPanel(vehicleId, main, params) {
  const { zones, max_zones: most } = await api(`/v1/vehicles/${vehicleId}/zones`);
  const panel = h("div", { class: "zones", "data-zones": zones.length }, h("h4", {}, "Privacy zones"), zoneMap(zones));
  const list = h("ul", { class: "plain" });
  for (const zone of zones) {
    const out = h("output", {});
    const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove the zone ${zone.label}` }, "Remove");
    remove.addEventListener("click", () =>
      run(remove, out, async () => {
        await api(`/v1/vehicles/${vehicleId}/zones/${zone.zone_id}`, { method: "DELETE" });
        await ownerPage(main, params);
        return `Zone ${zone.label} removed`;
      }),
    );
    list.append(h("li", {}, `${zone.label}: ${zone.radius_m} m around ${zone.latitude.toFixed(4)}, ${zone.longitude.toFixed(4)} `, remove, out));
  }
  const label = h("input", { name: "label", required: true, maxlength: 64, value: "home" });
  const lat = h("input", { name: "latitude", type: "number", step: "any", min: -90, max: 90, required: true, inputmode: "decimal" });
  const lon = h("input", { name: "longitude", type: "number", step: "any", min: -180, max: 180, required: true, inputmode: "decimal" });
  const radius = h("input", { name: "radius", type: "number", min: 100, max: 10000, value: 500, required: true });
  const out = h("output", {});
  const add = h("button", { type: "submit", disabled: zones.length >= most }, "Add zone");
  const form = h(
    "form",
    { "aria-label": `Add a privacy zone to vehicle ${vehicleId}` },
    field("Zone name", label),
    field("Latitude", lat, "Degrees north, e.g. 37.7749"),
    field("Longitude", lon, "Degrees east, e.g. -122.4194"),
    field("Radius (metres)", radius, "From 100 m to 10 km"),
    add,
    out,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(add, out, async () => {
      const body = { label: label.value, latitude: Number(lat.value), longitude: Number(lon.value), radius_m: Number(radius.value) };
      await api(`/v1/vehicles/${vehicleId}/zones`, { method: "POST", body });
      await ownerPage(main, params);
      return `Zone ${body.label} added`;
    });
  });
  panel.append(zones.length ? list : null, form);
  return panel;
}

// Base units as a number of DIMO for the charts (their axes need no more than 6 decimals).
function asDimo(wei) {
  return Number(BigInt(wei) / 10n ** 12n) / 1e6;
}

function claimPanel(claim, earnings, address, main, params) {
  const out = h("output", {});
  const button = h("button", { type: "button", disabled: BigInt(claim.claimable) === 0n }, "Claim everything");
  button.addEventListener("click", () =>
    run(button, out, async () => {
      await write("Marketplace", "claim", [claim.account, BigInt(claim.cumulative), claim.proof], address);
      refresh(main, params);
      return `Claimed ${dimo(claim.claimable)}`;
    }),
  );
  return h(
    "section",
    { class: "card", "aria-labelledby": "earnings" },
    h("h3", { id: "earnings" }, "Earnings"),
    h("p", {}, `Owed to you now: `, h("strong", { "data-claimable": claim.claimable }, dimo(claim.claimable)), `; paid so far: ${dimo(claim.claimed)}.`),
    BigInt(claim.claimable) === 0n ? h("p", {}, "Nothing to claim yet: products pay members once each period is settled.") : null,
    button,
    out,
    earningsChart(earnings),
  );
}

function earningsChart(earnings) {
  const byProduct = new Map();
  // cumulative: each product's line rises by what each settled period paid (a period pays
  // little, a dataset's delivery all at once: totals read better than the periods)
  for (const e of earnings.earnings) {
    const points = byProduct.get(e.product_id) || [];
    points.push([e.starts_at, (points.at(-1)?.[1] ?? 0) + asDimo(e.amount)]);
    byProduct.set(e.product_id, points);
  }
  // a total holds until the last settled day (a product settled once is a level line, not a dot)
  const last = Math.max(...earnings.earnings.map((e) => e.starts_at));
  for (const points of byProduct.values()) if (points.at(-1)[0] < last) points.push([last, points.at(-1)[1]]);
  const series = [...byProduct].map(([product, points]) => ({ name: `Product #${product}`, points }));
  const days = earnings.period_seconds === 86400 ? "day" : `${earnings.period_seconds} s period`;
  return timeChart(series, { title: `Earnings per product, in total by settled ${days}`, format: (v) => `${v.toFixed(4)} DIMO` });
}
