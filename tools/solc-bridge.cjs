#!/usr/bin/env node
// A `solc` command-line stand-in backed by solc-js (npm `solc`), for py-solc-x / ape-solidity
// and forge. There is no native solc on these machines, so this answers the two calls they
// make: `--version` and `--standard-json` (input JSON on stdin, output JSON on stdout).
// Imports are resolved against --base-path, each --include-path and each --allow-paths entry.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

const args = process.argv.slice(2);

if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (!args.includes("--standard-json")) {
  process.stderr.write("solc-bridge: only --version and --standard-json are supported\n");
  process.exit(1);
}

function optionValues(name) {
  const values = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) values.push(args[++i]);
    else if (args[i].startsWith(name + "=")) values.push(args[i].slice(name.length + 1));
  }
  return values;
}

const roots = [
  ...optionValues("--base-path"),
  ...optionValues("--include-path"),
  ...optionValues("--allow-paths").flatMap((v) => v.split(",")),
  process.cwd(),
].filter(Boolean);

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.resolve(r, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, "utf8") };
    } catch (_) {
      // try the next root
    }
  }
  return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
}

const input = fs.readFileSync(0, "utf8");
// stdout must carry only the JSON: py-solc-x parses all of it.
process.stdout.write(solc.compile(input, { import: findImports }));
