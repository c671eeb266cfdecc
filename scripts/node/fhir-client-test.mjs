#!/usr/bin/env node
// The FHIR REST API from a FHIR client none of us wrote (npm fhir-kit-client): the capability
// statement, a patient's CarePlans and Observations (every page, by the next links), a read,
// and a conditional create of a QuestionnaireResponse (If-None-Exist) made twice. Every
// resource returned is checked with the independent validator the exports use (npm "fhir").
// Env: FHIR_BASE, TOKEN, PATIENT_ID. Prints one JSON summary; exit 1 on any failure.
import { Client } from 'fhir-kit-client';
import fhirPackage from 'fhir';

const { Fhir } = fhirPackage;
const validator = new Fhir();
const failures = [];
const summary = {};

function check(condition, what) {
  if (!condition) failures.push(what);
}

function validate(resource, where) {
  const result = validator.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error');
  if (!result.valid || errors.length > 0) {
    failures.push(`${where}: ${resource.resourceType}/${resource.id} invalid: ` +
                  errors.map((e) => `${e.location}: ${e.message}`).join('; '));
  }
}

const client = new Client({ baseUrl: process.env.FHIR_BASE, bearerToken: process.env.TOKEN });
const patient = process.env.PATIENT_ID;

async function allPages(resourceType, searchParams) {
  const resources = [];
  let bundle = await client.search({ resourceType, searchParams });
  let pages = 0;
  while (bundle && pages < 50) {
    pages += 1;
    validate(bundle, `${resourceType} page ${pages}`);
    check(bundle.type === 'searchset', `${resourceType}: a searchset Bundle`);
    for (const entry of bundle.entry || []) {
      if (entry.search && entry.search.mode === 'match') resources.push(entry.resource);
    }
    bundle = await client.nextPage({ bundle });
  }
  return { resources, pages };
}

try {
  const statement = await client.capabilityStatement();
  validate(statement, 'metadata');
  check(statement.fhirVersion === '4.0.1', 'metadata: fhirVersion 4.0.1');
  const types = Object.fromEntries(statement.rest[0].resource.map((r) => [r.type, r]));
  for (const type of ['CarePlan', 'Goal', 'Observation', 'QuestionnaireResponse', 'Encounter', 'Flag', 'Consent', 'AuditEvent']) {
    check(types[type] && types[type].interaction.some((i) => i.code === 'search-type'), `metadata: ${type} searchable`);
  }
  check(types.QuestionnaireResponse.interaction.some((i) => i.code === 'create'), 'metadata: QuestionnaireResponse create');

  const careplans = await allPages('CarePlan', { patient, _count: '1' });
  summary.careplans = careplans.resources.length;
  check(careplans.resources.length >= 1, 'CarePlan: at least one for the patient');
  for (const plan of careplans.resources) {
    check(plan.subject.reference === `Patient/${patient}`, 'CarePlan: the patient\'s own');
    for (const goal of plan.goal || []) check(goal.reference.startsWith('Goal/'), `CarePlan: goal reference ${goal.reference}`);
  }

  const observations = await allPages('Observation', { patient, _count: '2' });
  summary.observations = observations.resources.length;
  summary.observation_pages = observations.pages;
  const ids = observations.resources.map((o) => o.id);
  check(new Set(ids).size === ids.length, 'Observation: no resource on two pages');
  check(observations.pages >= 2, 'Observation: more than one page followed');

  const active = await allPages('CarePlan', { patient, status: 'active' });
  summary.active_careplans = active.resources.length;
  for (const plan of active.resources) check(plan.status === 'active', 'CarePlan?status=active: only active ones');

  if (careplans.resources.length > 0) {
    const first = careplans.resources[0];
    const read = await client.read({ resourceType: 'CarePlan', id: first.id });
    validate(read, 'read');
    check(read.id === first.id, 'read: the same CarePlan');
  }

  const answer = {
    resourceType: 'QuestionnaireResponse',
    questionnaire: 'https://physio-backend.org/fhir/Questionnaire/nprs',
    status: 'completed',
    subject: { reference: `Patient/${patient}` },
    authored: new Date().toISOString(),
    item: [{ linkId: 'nprs', answer: [{ valueInteger: 4 }] }],
  };
  const condition = { headers: { 'If-None-Exist': `identifier=https://ehr.example/qr|${patient}-1` } };
  const created = await client.create({ resourceType: 'QuestionnaireResponse', body: answer, options: condition });
  const again = await client.create({ resourceType: 'QuestionnaireResponse', body: answer, options: condition });
  validate(created, 'create');
  summary.create_status = Client.httpFor(created).response.status;
  summary.repeat_status = Client.httpFor(again).response.status;
  check(summary.create_status === 201, `create: 201, was ${summary.create_status}`);
  check(summary.repeat_status === 200, `repeat: 200, was ${summary.repeat_status}`);
  check(created.id && created.id === again.id, 'repeat: the same resource');
  const location = Client.httpFor(created).response.headers.get('Location') || '';
  check(location.endsWith(`/QuestionnaireResponse/${created.id}`), `create: Location ${location}`);
  const stored = await client.search({ resourceType: 'QuestionnaireResponse', searchParams: { patient, _id: created.id } });
  check((stored.entry || []).length === 1, 'create: the resource is searchable');
} catch (error) {
  failures.push(`threw: ${error.message} ${error.response ? JSON.stringify(error.response.data) : ''}`);
}

summary.failures = failures;
console.log(JSON.stringify(summary));
process.exit(failures.length === 0 ? 0 : 1);
