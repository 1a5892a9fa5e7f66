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
