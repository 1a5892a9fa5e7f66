// The chain through the browser's wallet (EIP-1193): reads from the deployment's RPC, writes
// and signatures from the wallet. Addresses and ABIs come from the gateway (/app/config.json).
import { createPublicClient, createWalletClient, custom, defineChain, http } from "viem";

let cached;

export async function chain() {
  if (cached) return cached;
  const config = await (await fetch("/app/config.json")).json();
  if (!config.contracts) throw new Error(config.detail || "the gateway has no deployment to show");
  const net = defineChain({
    id: config.chain_id,
    name: `chain ${config.chain_id}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.rpc_url] } },
  });
  const reader = createPublicClient({ chain: net, transport: http(config.rpc_url) });
  cached = { config, net, reader };
  return cached;
}

export function wallet() {
  if (!window.ethereum) throw new Error("No browser wallet found: install one (an EIP-1193 provider) to sign in");
  return window.ethereum;
}

export async function connect() {
  const [address] = await wallet().request({ method: "eth_requestAccounts" });
  return address;
}

export async function contract(name) {
  const { config } = await chain();
  return config.contracts[name];
}

export async function read(name, functionName, args = []) {
  const { reader } = await chain();
  const { address, abi } = await contract(name);
  return reader.readContract({ address, abi, functionName, args });
}

// Sends a contract call from the wallet and waits for it to be mined; throws on a revert.
export async function write(name, functionName, args, account) {
  const { net, reader } = await chain();
  const { address, abi } = await contract(name);
  const sender = createWalletClient({ account, chain: net, transport: custom(wallet()) });
  const { request } = await reader.simulateContract({ address, abi, functionName, args, account });
  const hash = await sender.writeContract(request);
  const receipt = await reader.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
  return receipt;
}

export async function signTypedData(account, typed) {
  const sender = createWalletClient({ account, chain: (await chain()).net, transport: custom(wallet()) });
  return sender.signTypedData(typed);
}
