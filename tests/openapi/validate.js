// Checks one JSON answer against the schema the OpenAPI document gives it, strictly (Ajv,
// OpenAPI 3.0's nullable, formats checked, no extra leniency):
//   node validate.js BUNDLE.json METHOD PATH STATUS < body.json
// BUNDLE.json is the document with every $ref resolved (redocly bundle --dereferenced).
// Prints "valid", or the errors and exits 1.
'use strict';
const fs = require('fs');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const [bundle, method, path, status] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(bundle, 'utf8'));
const op = ((doc.paths || {})[path] || {})[method.toLowerCase()];
if (!op) { console.error(`no operation ${method} ${path}`); process.exit(2); }
const resp = (op.responses || {})[status];
if (!resp) { console.error(`${method} ${path} declares no ${status}`); process.exit(1); }
const schema = (((resp.content || {})['application/json']) || {}).schema;
if (!schema) { console.error(`${method} ${path} ${status} has no JSON schema`); process.exit(2); }
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const check = ajv.compile(schema);
const body = JSON.parse(fs.readFileSync(0, 'utf8'));
if (check(body)) {
  console.log('valid');
} else {
  console.log(JSON.stringify(check.errors, null, 1));
  process.exit(1);
}
