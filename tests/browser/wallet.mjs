// A test wallet for the browser: window.ethereum (EIP-1193) in every page, answered here in
// node by a viem account holding an anvil key. personal_sign, eth_signTypedData_v4 and
// eth_sendTransaction are signed with the key (real signatures); reads go to the node.
import { chromium } from "playwright-core";
import { createWalletClient, hexToString, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function rpc(url, method, params) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await answer.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

export async function launch(userDataDir) {
  // A persistent context needs its own profile folder: the fresh --user-data-dir.
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
}

// Gives every page of `context` a wallet holding `key`, on the node at `rpcUrl`.
export async function withWallet(context, key, rpcUrl) {
  const account = privateKeyToAccount(key);
  const chainId = Number(await rpc(rpcUrl, "eth_chainId", []));
  const chain = { id: chainId, name: "test", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } };
  const sender = createWalletClient({ account, chain, transport: http(rpcUrl) });
  await context.exposeFunction("__testWallet", async (method, params) => {
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return [account.address];
      case "eth_chainId":
        return `0x${chainId.toString(16)}`;
      case "personal_sign":
        return account.signMessage({ message: { raw: params[0] } });
      case "eth_signTypedData_v4": {
        const typed = JSON.parse(params[1]);
        delete typed.types.EIP712Domain;
        return account.signTypedData(typed);
      }
      case "eth_sendTransaction": {
        const tx = params[0];
        return sender.sendTransaction({
          to: tx.to,
          data: tx.data,
          value: tx.value ? BigInt(tx.value) : undefined,
          gas: tx.gas ? BigInt(tx.gas) : undefined,
        });
      }
      default:
        return rpc(rpcUrl, method, params);
    }
  });
  await context.addInitScript(() => {
    window.ethereum = {
      isTestWallet: true,
      request: ({ method, params }) => window.__testWallet(method, params ?? []),
      on() {},
      removeListener() {},
    };
  });
  return account.address;
}

export { hexToString };
