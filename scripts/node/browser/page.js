// A telehealth platform's patient page, as small as it can be: built by esbuild (browser-test.js)
// from the Connect client that protoc-gen-es and protoc-gen-connect-es generate from protos/,
// with @connectrpc/connect-web's fetch transport. Served from a loopback origin, it calls the
// services' HTTP ports cross-origin, so every call is preceded by the browser's CORS preflight.
//
// The query string says what to do:
//   mode=patient  read the active plan, log a home session of its first home exercise, then
//                 send a log the server refuses and show the Connect error code it came with.
//   mode=blocked  (a page on an origin not in cors-allowed-origins) try the same calls; the
//                 browser itself must refuse to hand over the answers.
// The outcome is written to <pre id="results"> as JSON and shown to the user in #status.
import { createPromiseClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { PlanningService } from "physio/planning/v1/planning_connect.js";
import { ProgressService } from "physio/progress/v1/progress_connect.js";
import { PlanItemKind } from "physio/planning/v1/planning_pb.js";

const query = new URLSearchParams(window.location.search);
const patientId = query.get("patient");
const token = query.get("token");

function transport(baseUrl) {
  return createConnectTransport({
    baseUrl,
    interceptors: [(next) => (request) => {
      request.header.set("Authorization", `Bearer ${token}`);
      return next(request);
    }],
  });
}

const planning = createPromiseClient(PlanningService, transport(query.get("planning")));
const progress = createPromiseClient(ProgressService, transport(query.get("progress")));

function show(results) {
  document.getElementById("results").textContent = JSON.stringify(results);
  const status = document.getElementById("status");
  status.textContent = results.error ? `Error: ${results.error}` : results.summary;
  document.body.dataset.done = "true";
}

function describe(err) {
  const connectError = ConnectError.from(err);
  return { code: Code[connectError.code], message: connectError.rawMessage };
}

async function patient() {
  const results = {};
  const { plan } = await planning.getActivePlan({ patientId });
  results.planId = plan.planId;
  const exercise = plan.items.find((item) => item.kind === PlanItemKind.EXERCISE && item.homeProgramme);
  results.exerciseId = exercise.itemId;
  const { log } = await progress.logHomeExercise({
    requestId: `browser-${patientId}-1`, patientId, exerciseId: exercise.itemId,
    setsDone: exercise.dose.sets, repsDone: exercise.dose.reps, painDuring: 3, painAfter: 3, usualPain: 4,
    safetyNet: {},
  });
  results.logId = log.logId;
  try {
    await progress.logHomeExercise({
      requestId: `browser-${patientId}-2`, patientId, exerciseId: "ex.not.prescribed",
      setsDone: 1, repsDone: 1, painDuring: 3, painAfter: 3,
    });
    results.refused = { code: "none" };
  } catch (err) {
    results.refused = describe(err);
  }
  // What the patient sees: the refusal with its Connect code.
  results.summary = `Logged ${results.exerciseId}; refused: ${results.refused.code}: ${results.refused.message}`;
  return results;
}

async function blocked() {
  const results = {};
  try {
    const { plan } = await planning.getActivePlan({ patientId });
    results.read = { planId: plan.planId };
  } catch (err) {
    results.read = describe(err);
  }
  try {
    await progress.logHomeExercise({
      requestId: `browser-${patientId}-blocked`, patientId, exerciseId: query.get("exercise") || "ex.any",
      setsDone: 1, repsDone: 1, painDuring: 3, painAfter: 3,
    });
    results.log = { code: "none" };
  } catch (err) {
    results.log = describe(err);
  }
  results.summary = `read: ${results.read.code || "answered"}; log: ${results.log.code}`;
  return results;
}

(query.get("mode") === "blocked" ? blocked() : patient())
  .then(show)
  .catch((err) => show({ error: String(err && err.stack ? err.stack : err) }));
