// Pantau monitoring page: polls the JSON endpoints and redraws in place.
"use strict";

const charts = {};
let refreshS = 5;
let timer = null;
let cityZone = "Asia/Jakarta";

function query() {
  const params = new URLSearchParams();
  params.set("kecamatan", document.getElementById("kecamatan").value);
  const date = document.getElementById("date").value;
  if (date) params.set("date", date);
  return params.toString();
}

async function getRows(path) {
  const response = await fetch(`${path}?${query()}`, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body.rows;
}

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

// Times on the city's clock, like the chart slots.
function localTime(ms) {
  return ms
    ? new Date(ms).toLocaleTimeString("en-GB", { timeZone: cityZone })
    : "–";
}

function drawChart(id, type, labels, datasets) {
  const box = document.getElementById(`${id}-box`);
  const values = datasets.flatMap((set) => set.data.filter((v) => v !== null));
  box.dataset.points = String(values.length);
  box.dataset.nonzero = String(values.filter((v) => Number(v) !== 0).length);
  if (charts[id]) {
    charts[id].data.labels = labels;
    charts[id].data.datasets = datasets;
    charts[id].update("none");
    return;
  }
  charts[id] = new Chart(document.getElementById(id), {
    type,
    data: { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      spanGaps: true,
      scales: { y: { beginAtZero: true } },
    },
  });
}

async function refreshWall() {
  const cameras = await getRows("/api/cameras");
  const wall = document.getElementById("wall");
  wall.dataset.cameras = String(cameras.length);
  const stamp = Date.now();
  for (const camera of cameras) {
    let card = document.getElementById(`camera-${camera.camera_id}`);
    if (!card) {
      card = document.createElement("div");
      card.className = "camera";
      card.id = `camera-${camera.camera_id}`;
      const img = document.createElement("img");
      img.alt = `latest annotated frame of ${camera.camera_id}`;
      card.append(img, document.createElement("div"));
      card.lastChild.className = "facts";
      wall.append(card);
    }
    const img = card.querySelector("img");
    const next = new Image();
    next.onload = () => {
      img.src = next.src;
      card.dataset.frame = "loaded";
    };
    next.src = `/frames/${encodeURIComponent(camera.camera_id)}.jpg?t=${stamp}`;
    const facts = card.querySelector(".facts");
    const state = camera.state || "UNKNOWN";
    facts.replaceChildren(
      text("strong", camera.camera_id),
      text("span", state, `state ${state}`),
      text("span", `${camera.kelurahan}, ${camera.kecamatan}`, "muted"),
      text("span", `people ${camera.people ?? "–"}`),
      text("span", `vehicles ${camera.vehicles ?? "–"}`),
      text("span", `masks ${camera.masked ?? "–"}/${(camera.masked ?? 0) + (camera.unmasked ?? 0)}`),
      text("span", `too close ${camera.violators ?? "–"}`),
      text("span", `frame ${localTime(camera.captured_at)}`, "muted"),
    );
  }
}

async function refreshCharts() {
  const mobility = await getRows("/api/mobility");
  const slots = mobility.map((row) => row.slot_local);
  drawChart("mobility", "line", slots, [
    { label: "today", data: mobility.map((r) => r.vehicles_avg), borderColor: "#1f6feb" },
    { label: "same weekday last week", data: mobility.map((r) => r.vehicles_avg_last_week), borderColor: "#8a94a3", borderDash: [4, 4] },
  ]);
  drawChart("density", "line", slots, [
    { label: "today", data: mobility.map((r) => r.people_avg), borderColor: "#bf3989" },
    { label: "same weekday last week", data: mobility.map((r) => r.people_avg_last_week), borderColor: "#8a94a3", borderDash: [4, 4] },
  ]);
  const regions = await getRows("/api/regions");
  const level = document.getElementById("kecamatan").value ? "kelurahan" : "kecamatan";
  document.getElementById("regions-title").textContent = `Mask compliance by ${level}`;
  document.getElementById("violations-title").textContent = `Distancing violations by ${level}`;
  const names = regions.map((row) => row.region);
  drawChart("compliance", "bar", names, [
    { label: "masked / faces judged", data: regions.map((r) => r.compliance_ratio), backgroundColor: "#1b7f3b" },
  ]);
  drawChart("violations", "bar", names, [
    { label: "people too close", data: regions.map((r) => r.violators), backgroundColor: "#b42318" },
  ]);
}

async function refreshAlerts() {
  const alerts = await getRows("/api/alerts");
  const table = document.getElementById("alerts");
  table.dataset.rows = String(alerts.length);
  const body = table.querySelector("tbody");
  body.replaceChildren(
    ...alerts.map((alert) => {
      const row = document.createElement("tr");
      row.append(
        text("td", localTime(alert.fired_at)),
        text("td", alert.rule_id),
        text("td", `${alert.scope_level} ${alert.scope_id}`),
        text("td", Number(alert.value).toFixed(3)),
        text("td", alert.message),
      );
      return row;
    }),
  );
  if (!alerts.length) {
    const row = document.createElement("tr");
    row.append(text("td", "no alert is firing", "muted"));
    body.append(row);
  }
}

async function refresh() {
  const status = document.getElementById("updated");
  try {
    await Promise.all([refreshWall(), refreshCharts(), refreshAlerts()]);
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
    status.textContent = `updated ${localTime(Date.now())} (${cityZone})`;
    status.className = "muted";
  } catch (error) {
    status.textContent = `not updated: ${error.message}`;
    status.className = "error";
  } finally {
    clearTimeout(timer);
    timer = setTimeout(refresh, refreshS * 1000);
  }
}

async function start() {
  const config = await (await fetch("/api/config")).json();
  refreshS = config.refresh_s;
  cityZone = config.timezone;
  document.getElementById("date").value = config.today;
  const select = document.getElementById("kecamatan");
  for (const row of (await (await fetch("/api/kecamatan")).json()).rows || []) {
    select.append(new Option(row.kecamatan, row.kecamatan));
  }
  for (const id of ["kecamatan", "date"]) {
    document.getElementById(id).addEventListener("change", () => {
      clearTimeout(timer);
      document.getElementById("wall").replaceChildren();
      refresh();
    });
  }
  refresh();
}

start();
