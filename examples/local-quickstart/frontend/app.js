// Ask the API (same host, port 5000) for the items and list them.
const api = `${location.protocol}//${location.hostname}:5000/api/items`;
document.getElementById("api").textContent = api;

const list = document.getElementById("items");
const status = document.getElementById("status");

function show(names) {
  list.replaceChildren(...names.map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    return li;
  }));
}

fetch(api)
  .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
  .then(({ ok, body }) => {
    if (ok) {
      show(body.items.map((item) => item.name));
      status.textContent = `${body.items.length} items`;
    } else {
      show([]);
      status.className = "error";
      status.textContent = `${body.error}: ${body.detail}`;
    }
  })
  .catch((err) => {
    show([]);
    status.className = "error";
    status.textContent = `cannot reach the API: ${err.message}`;
  });
