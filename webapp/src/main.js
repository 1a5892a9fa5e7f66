// The app's shell: sign-in with the browser wallet, and the pages by URL fragment.
import { session, signIn, signOut } from "./api.js";
import { connect, wallet } from "./chain.js";
import { buyerPage } from "./buyer.js";
import { operatorPage } from "./operator.js";
import { ownerPage } from "./owner.js";
import { h, say, shortAddress } from "./ui.js";

const PAGES = { owner: ownerPage, buyer: buyerPage, operator: operatorPage };

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { page: path.split("/")[0] || "owner", params: new URLSearchParams(query || "") };
}

function renderAccount() {
  const box = document.getElementById("account");
  if (session.live) {
    const out = h("button", { type: "button", class: "secondary" }, "Sign out");
    out.addEventListener("click", async () => {
      await signOut();
      render();
    });
    box.replaceChildren(h("span", { class: "mono", title: session.address }, `Signed in as ${shortAddress(session.address)}`), out);
  } else {
    box.replaceChildren();
  }
}

function signInPanel(main) {
  const button = h("button", { type: "button" }, "Sign in with your wallet");
  const out = h("output", {});
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.textContent = "Waiting for your wallet…";
    try {
      const address = await connect();
      await signIn(wallet(), address);
      say(`Signed in as ${address}`, "ok");
      render();
    } catch (error) {
      out.textContent = error.reason ? `Refused (${error.reason}): ${error.message}` : `Failed: ${error.shortMessage || error.message}`;
      out.dataset.kind = "error";
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(
    h("h2", {}, "Sign in"),
    h("p", {}, "Your wallet signs a message (Sign-In with Ethereum) for this site; nothing is sent on chain."),
    button,
    out,
  );
}

async function render() {
  renderAccount();
  const main = document.getElementById("main");
  const { page, params } = route();
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${page}`);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  if (!session.live) return signInPanel(main);
  try {
    await (PAGES[page] || ownerPage)(main, params);
  } catch (error) {
    if (error.reason === "bad_token" || error.reason === "session_revoked") {
      session.clear();
      return render();
    }
    main.append(h("p", { role: "alert", class: "error" }, `Failed to load: ${error.reason ? `${error.reason}: ` : ""}${error.message}`));
  }
}

window.addEventListener("hashchange", render);
render();
