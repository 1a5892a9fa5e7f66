// Hand-drawn SVG pictures (nothing fetched at run time): a sparkline of numbers and a map of
// positions (an equirectangular plot of the points themselves: no tiles).
import { h } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  el.append(...children);
  return el;
}

export function sparkline(values, label, width = 220, height = 48) {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - ((v - min) / span) * (height - 8)).toFixed(1)}`).join(" ");
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `${label}: ${values.length} readings, last ${values.at(-1)}` },
    svg("polyline", { points, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }),
    values.length ? svg("circle", { cx: ((values.length - 1) * step).toFixed(1), cy: points.split(" ").at(-1).split(",")[1], r: 3, fill: "#0b5cad" }) : "",
  );
}

// tracks: Map of vehicle id -> [[lat, lon], ...]
export function trackMap(tracks, width = 460, height = 300) {
  const all = [...tracks.values()].flat();
  const lats = all.map(([lat]) => lat);
  const lons = all.map(([, lon]) => lon);
  const pad = 0.002;
  const [south, north] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  const [west, east] = [Math.min(...lons) - pad, Math.max(...lons) + pad];
  const x = (lon) => (((lon - west) / (east - west)) * (width - 20) + 10).toFixed(1);
  const y = (lat) => (((north - lat) / (north - south)) * (height - 20) + 10).toFixed(1);
  const colours = ["#0b5cad", "#a40e26", "#116329", "#8a4b00", "#5a2d91"];
  const map = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": `Map of ${tracks.size} vehicles' positions as they arrive` },
    svg("rect", { x: 0, y: 0, width, height, fill: "#eef3f7", stroke: "#c9d1d9" }),
  );
  let i = 0;
  for (const [vehicle, points] of tracks) {
    const colour = colours[i++ % colours.length];
    map.append(svg("polyline", { points: points.map(([lat, lon]) => `${x(lon)},${y(lat)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2, opacity: 0.6 }));
    const [lat, lon] = points.at(-1);
    map.append(svg("circle", { cx: x(lon), cy: y(lat), r: 6, fill: colour }, svg("title", {}, `vehicle ${vehicle}: ${lat.toFixed(4)}, ${lon.toFixed(4)}`)));
    map.append(svg("text", { x: Number(x(lon)) + 8, y: Number(y(lat)) - 8 }, `#${vehicle}`));
  }
  map.append(svg("text", { x: 10, y: height - 4 }, `${south.toFixed(3)}…${north.toFixed(3)} N, ${west.toFixed(3)}…${east.toFixed(3)} E`));
  return h("figure", {}, map, h("figcaption", {}, "Where the vehicles are (latest dot, with their track)"));
}

const COLOURS = ["#0b5cad", "#a40e26", "#116329", "#8a4b00", "#5a2d91"];

// A line chart of one or more series over time, with its axes and a legend, and the same
// numbers as a table for screen readers and keyboard users (in a <details>).
// series: [{ name, points: [[unixSeconds, number], ...] }]; format: number -> text.
export function timeChart(series, { title, format = String, width = 560, height = 240 }) {
  const all = series.flatMap((s) => s.points);
  const figure = h("figure", { class: "chart" });
  if (!all.length) {
    figure.append(h("p", {}, `${title}: nothing yet.`));
    return figure;
  }
  const [left, right, top, bottom] = [70, 10, 10, 28];
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  // a single day: a day either side, so the point sits in the middle rather than on the axis
  const [x0, x1] = Math.min(...xs) === Math.max(...xs) ? [xs[0] - 86400, xs[0] + 86400] : [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys)];
  const x = (v) => (left + ((v - x0) / (x1 - x0 || 1)) * (width - left - right)).toFixed(1);
  const y = (v) => (top + ((y1 - v) / (y1 - y0 || 1)) * (height - top - bottom)).toFixed(1);
  const day = (t) => new Date(t * 1000).toISOString().slice(0, 10);
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": `${title}: ${series.length} series from ${day(x0)} to ${day(x1)}, highest ${format(y1)}` },
    svg("rect", { x: 0, y: 0, width, height, fill: "#ffffff", stroke: "#c9d1d9" }),
    svg("line", { x1: left, y1: y(y0), x2: width - right, y2: y(y0), stroke: "#4a5560" }),
    svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#4a5560" }),
    svg("text", { x: 4, y: top + 10 }, format(y1)),
    svg("text", { x: 4, y: Number(y(y0)) }, format(y0)),
    svg("text", { x: left, y: height - 8 }, day(x0)),
    svg("text", { x: width - right - 70, y: height - 8 }, day(x1)),
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    chart.append(svg("polyline", { points: s.points.map(([px, py]) => `${x(px)},${y(py)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const [px, py] of s.points) chart.append(svg("circle", { cx: x(px), cy: y(py), r: 3, fill: colour }, svg("title", {}, `${s.name}, ${day(px)}: ${format(py)}`)));
  });
  const legend = h("ul", { class: "legend plain" }, series.map((s, i) => h("li", {}, h("span", { class: "swatch", style: `background:${COLOURS[i % COLOURS.length]}` }), s.name)));
  const rows = series.flatMap((s) => s.points.map(([px, py]) => h("tr", {}, h("td", {}, s.name), h("td", {}, day(px)), h("td", {}, format(py)))));
  const table = h("details", {}, h("summary", {}, "The numbers"), h("table", {}, h("tr", {}, h("th", { scope: "col" }, "Series"), h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, "Value")), rows));
  figure.append(chart, h("figcaption", {}, title), legend, table);
  return figure;
}

const METRES_PER_DEGREE = 111_320;

// Privacy zones as circles on the same plain map as the stream view (no tiles): each zone's
// centre and radius, labelled; the frame is the zones' extent.
export function zoneMap(zones, width = 460, height = 300) {
  const map = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": `Map of ${zones.length} privacy zone(s)` },
    svg("rect", { x: 0, y: 0, width, height, fill: "#eef3f7", stroke: "#c9d1d9" }),
  );
  if (!zones.length) return h("figure", {}, map, h("figcaption", {}, "No privacy zone yet."));
  const extent = zones.map((z) => {
    const dLat = z.radius_m / METRES_PER_DEGREE;
    const dLon = dLat / Math.max(Math.cos((z.latitude * Math.PI) / 180), 0.01);
    return [z.latitude - dLat, z.latitude + dLat, z.longitude - dLon, z.longitude + dLon];
  });
  let [south, north] = [Math.min(...extent.map((e) => e[0])), Math.max(...extent.map((e) => e[1]))];
  let [west, east] = [Math.min(...extent.map((e) => e[2])), Math.max(...extent.map((e) => e[3]))];
  // same scale on both axes (metres), centred
  const mid = (south + north) / 2;
  const cos = Math.max(Math.cos((mid * Math.PI) / 180), 0.01);
  const perPixel = Math.max((north - south) / (height - 20), ((east - west) * cos) / (width - 20));
  const [cLat, cLon] = [mid, (west + east) / 2];
  [south, north] = [cLat - (perPixel * height) / 2, cLat + (perPixel * height) / 2];
  [west, east] = [cLon - (perPixel * width) / 2 / cos, cLon + (perPixel * width) / 2 / cos];
  const x = (lon) => (((lon - west) / (east - west)) * width).toFixed(1);
  const y = (lat) => (((north - lat) / (north - south)) * height).toFixed(1);
  zones.forEach((z, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const r = (z.radius_m / METRES_PER_DEGREE / perPixel).toFixed(1);
    map.append(svg("circle", { cx: x(z.longitude), cy: y(z.latitude), r, fill: colour, "fill-opacity": 0.18, stroke: colour, "stroke-width": 2, "data-zone": z.zone_id }, svg("title", {}, `${z.label}: ${z.radius_m} m around ${z.latitude.toFixed(4)}, ${z.longitude.toFixed(4)}`)));
    map.append(svg("circle", { cx: x(z.longitude), cy: y(z.latitude), r: 3, fill: colour }));
    map.append(svg("text", { x: Number(x(z.longitude)) + 6, y: Number(y(z.latitude)) - 6 }, z.label));
  });
  map.append(svg("text", { x: 10, y: height - 4 }, `${south.toFixed(3)}…${north.toFixed(3)} N, ${west.toFixed(3)}…${east.toFixed(3)} E`));
  return h("figure", {}, map, h("figcaption", {}, "Your privacy zones: buyers see only a coarse position inside them"));
}

// Horizontal bars (one per group) with the noise's scale as a whisker: the value is drawn, the
// uncertainty shown. bars: [{ label, value, error }].
export function barChart(bars, title, width = 460) {
  const row = 28;
  const height = bars.length * row + 24;
  const left = 150;
  const max = Math.max(...bars.map((b) => Math.abs(b.value) + (b.error || 0)), 1e-9);
  const x = (v) => left + (v / max) * (width - left - 60);
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": `${title}: ${bars.length} bar(s)` },
    svg("rect", { x: 0, y: 0, width, height, fill: "#ffffff", stroke: "#c9d1d9" }),
  );
  bars.forEach((b, i) => {
    const y = 8 + i * row;
    const end = x(Math.max(b.value, 0));
    chart.append(svg("text", { x: 6, y: y + 15 }, b.label.slice(0, 22)));
    chart.append(svg("rect", { x: left, y, width: Math.max(end - left, 1).toFixed(1), height: row - 10, fill: COLOURS[0] }, svg("title", {}, `${b.label}: ${b.value.toFixed(2)} ± ${(b.error || 0).toFixed(2)}`)));
    if (b.error) chart.append(svg("line", { x1: x(Math.max(b.value - b.error, 0)).toFixed(1), x2: x(b.value + b.error).toFixed(1), y1: y + (row - 10) / 2, y2: y + (row - 10) / 2, stroke: "#14171a", "stroke-width": 2 }));
    chart.append(svg("text", { x: Number(x(b.value + (b.error || 0))) + 4, y: y + 15 }, b.value.toFixed(1)));
  });
  return h("figure", { class: "chart" }, chart, h("figcaption", {}, title));
}
