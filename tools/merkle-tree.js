#!/usr/bin/env node
// The reference for workers/merkle.py: @openzeppelin/merkle-tree's StandardMerkleTree over
// (uint256 index, address account, uint256 amount) leaves, or the leaf encoding a request
// names ("encoding": ["address", "uint256"] for the Marketplace's cumulative claims). Reads one
// JSON request on stdin, writes one JSON answer on stdout:
//   {"build": [[index, account, amount], ...], "encoding"?: [...]} -> a tree per list of values
//   {"load": <StandardMerkleTree dump>, ...}          -> a tree per dump (validated by load)
// with the whole request a list of such objects; each answer is
//   {"root", "proofs": [proof of value 0, ...], "dump"}.
// uint256 values travel as decimal strings.
"use strict";
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const LEAF_ENCODING = ["uint256", "address", "uint256"];

function answer(tree) {
  const proofs = [];
  for (let i = 0; i < tree.length; i++) proofs.push(tree.getProof(i));
  return { root: tree.root, proofs, dump: tree.dump() };
}

function handle(request) {
  if (request.build) return answer(StandardMerkleTree.of(request.build, request.encoding || LEAF_ENCODING));
  if (request.load) return answer(StandardMerkleTree.load(request.load));
  throw new Error(`unknown request: ${Object.keys(request)}`);
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  try {
    const requests = JSON.parse(input);
    process.stdout.write(JSON.stringify(requests.map(handle)));
  } catch (err) {
    process.stderr.write(`merkle-tree.js: ${err.message}\n`);
    process.exit(1);
  }
});
