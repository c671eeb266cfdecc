#!/usr/bin/env node
// Validates FHIR R4 JSON files with an independent validator (the npm package
// "fhir", Lantana Consulting Group). Exit 0 when every file is valid; prints the
// error messages and exits 1 otherwise. Usage: node validate-fhir.js FILE...
'use strict';
const fs = require('fs');
const { Fhir } = require('fhir');

const fhir = new Fhir();
let failed = 0;
for (const file of process.argv.slice(2)) {
  const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error');
  if (!result.valid || errors.length > 0) {
    failed += 1;
    console.log(`${file}: INVALID`);
    for (const e of errors) console.log(`  ${e.resourceId} ${e.location}: ${e.message}`);
  } else {
    console.log(`${file}: valid (${resource.resourceType}, ${(resource.entry || []).length} entries)`);
  }
}
process.exit(failed === 0 && process.argv.length > 2 ? 0 : 1);
