#!/usr/bin/env node
// Compiles crates/oai-chain/contracts/**/*.sol with the pinned solc-js (npm `solc`, see
// .ci/node/package.json) into Foundry-shaped artifacts (crates/oai-chain/artifacts/<Name>.json:
// {abi, bytecode: {object}, deployedBytecode: {object}}).
//   node scripts/compile_contracts.cjs          write the artifacts
//   node scripts/compile_contracts.cjs --check  fail if the committed artifacts differ
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const crate = path.join(root, 'crates', 'oai-chain');
const solc = require(path.join(root, '.ci', 'node', 'node_modules', 'solc'));
const PINNED = '0.8.30';
if (!solc.version().startsWith(PINNED + '+')) {
  console.error(`solc ${solc.version()} is not the pinned ${PINNED}`);
  process.exit(1);
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.sol') ? [path.join(dir, e.name)] : []);
}

const sources = {};
for (const file of walk(path.join(crate, 'contracts')).sort()) {
  // source keys are relative, so the bytecode's metadata hash does not depend on the checkout path
  sources[path.relative(crate, file).split(path.sep).join('/')] = { content: fs.readFileSync(file, 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: 'prague',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const check = process.argv.includes('--check');
const outDir = path.join(crate, 'artifacts');
fs.mkdirSync(outDir, { recursive: true });
const written = new Set();
let stale = 0;
for (const [, contracts] of Object.entries(output.contracts).sort()) {
  for (const [name, c] of Object.entries(contracts).sort()) {
    if (c.evm.bytecode.object === '') continue; // interfaces have no bytecode
    const artifact = {
      abi: c.abi,
      bytecode: { object: '0x' + c.evm.bytecode.object },
      deployedBytecode: { object: '0x' + c.evm.deployedBytecode.object },
    };
    const text = JSON.stringify(artifact, null, 2) + '\n';
    const file = path.join(outDir, name + '.json');
    written.add(name + '.json');
    if (check) {
      const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
      if (old !== text) { console.error(`stale artifact: ${path.relative(root, file)}`); stale++; }
    } else {
      fs.writeFileSync(file, text);
    }
  }
}
for (const f of fs.readdirSync(outDir)) {
  if (!written.has(f)) {
    if (check) { console.error(`artifact without a source: ${f}`); stale++; } else fs.unlinkSync(path.join(outDir, f));
  }
}
if (stale) {
  console.error('artifacts differ from the sources: run `node scripts/compile_contracts.cjs` and commit');
  process.exit(1);
}
console.log(`${check ? 'checked' : 'wrote'} ${written.size} artifacts with solc ${solc.version()}`);
