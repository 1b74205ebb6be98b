// k6 load of loadtest/soak.sh: a constant arrival rate of POST /recommend with bodies from a file.
//
//   k6 run --no-usage-report -e URL=http://127.0.0.1:PORT/recommend -e KEY=API_KEY -e RATE=500 \
//     -e SOAK=600 -e CONNS=16 -e BODIES=/abs/path/bodies.txt loadtest/k6/soak.js
//
// Environment (-e, all required): URL (loopback; soak.sh points it at its forwarder), KEY
// (X-API-Key), RATE (requests/s), SOAK (seconds), CONNS (VUs pre-allocated = 4 x CONNS, at most
// 400), BODIES (one JSON body a line, from loadtest/tools/soak_bodies.py). Bodies are drawn at
// random; answers are discarded. No checks or thresholds: soak.sh judges the run from k6's CSV
// output (--out csv=...) and the access logs.
import http from "k6/http";
const bodies = open(__ENV.BODIES).split("\n").filter((l) => l.length > 0);
export const options = {
  discardResponseBodies: true,
  scenarios: { soak: { executor: "constant-arrival-rate", rate: Number(__ENV.RATE), timeUnit: "1s",
    duration: `${__ENV.SOAK}s`, preAllocatedVUs: Number(__ENV.CONNS) * 4, maxVUs: 400, gracefulStop: "15s" } },
  summaryTrendStats: ["avg", "p(50)", "p(99)", "max"],
};
export default function () {
  const body = bodies[Math.floor(Math.random() * bodies.length)];
  http.post(__ENV.URL, body, { headers: { "content-type": "application/json", "x-api-key": __ENV.KEY }, timeout: "10s" });
}
