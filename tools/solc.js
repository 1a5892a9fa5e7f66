#!/usr/bin/env node
// A native-`solc` command-line face for solc-js, so forge and ape-solidity share
// one pinned compiler from npm and nothing downloads one at run time.
// Answers `--version` like native solc and compiles `--standard-json` from stdin,
// resolving imports against `--base-path` and every `--include-path`.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

function parseArgs(argv) {
  const opts = { basePath: process.cwd(), includePaths: [], standardJson: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inlineValue] = arg.includes("=") ? arg.split(/=(.*)/s) : [arg, undefined];
    const value = () => (inlineValue !== undefined ? inlineValue : argv[++i]);
    switch (flag) {
      case "--version": opts.version = true; break;
      case "--standard-json": opts.standardJson = true; break;
      case "--base-path": opts.basePath = value(); break;
      case "--include-path": opts.includePaths.push(value()); break;
      case "--allow-paths": value(); break; // solc-js reads through our callback only
      default:
        if (flag.startsWith("-")) break; // other native flags carry no meaning here
        fail(`unsupported positional argument: ${arg} (only --standard-json is supported)`);
    }
  }
  return opts;
}

function fail(message) {
  process.stderr.write(`solc shim: ${message}\n`);
  process.exit(1);
}

function importResolver(roots) {
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    const long = solc.version().replace(/\.Emscripten\.clang$/, ".Linux.g++");
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${long}\n`);
    return;
  }
  if (!opts.standardJson) fail("only --version and --standard-json are supported");
  const input = fs.readFileSync(0, "utf8");
  const roots = [opts.basePath, ...opts.includePaths, process.cwd()];
  process.stdout.write(solc.compile(input, { import: importResolver(roots) }));
}

main();
