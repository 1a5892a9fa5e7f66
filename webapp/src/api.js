// The gateway's HTTP API (same origin) and the signed-in session (SIWE, EIP-4361).

const TOKEN = "dimo.token";

export class Refusal extends Error {
  // A gateway problem document (RFC 9457): `reason` is the stable code, `detail` says why.
  constructor(problem) {
    super(problem.detail || problem.title || "refused");
    this.reason = problem.reason || "error";
    this.status = problem.status;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  get address() {
    return sessionStorage.getItem(`${TOKEN}.address`);
  },
  save(token, address, expiresAt) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(`${TOKEN}.address`, address);
    sessionStorage.setItem(`${TOKEN}.expires`, String(expiresAt));
  },
  clear() {
    for (const key of [TOKEN, `${TOKEN}.address`, `${TOKEN}.expires`]) sessionStorage.removeItem(key);
  },
  get live() {
    return Boolean(this.token) && Number(sessionStorage.getItem(`${TOKEN}.expires`)) > Date.now() / 1000;
  },
};

export async function api(path, { method = "GET", body, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (answer.status === 204) return null;
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Refusal({ status: answer.status, ...data });
  return data;
}

// Sign in with the wallet: the gateway's message for this page's own origin, signed with
// personal_sign; the token lives as long as the message says (the gateway caps it).
export async function signIn(wallet, address) {
  const issued = await api("/auth/nonce", {
    method: "POST",
    auth: false,
    body: { address, domain: location.host, uri: location.origin },
  });
  const signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(issued.message), address] });
  const done = await api("/auth/verify", { method: "POST", auth: false, body: { message: issued.message, signature } });
  session.save(done.token, done.address, done.expires_at);
  return done;
}

export async function signOut() {
  try {
    await api("/auth/logout", { method: "POST" });
  } finally {
    session.clear();
  }
}

function utf8Hex(text) {
  return `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
