// Reads log lines on stdin and prints each as one JSON object (logfmt.parse: the npm logfmt
// package, an independent parser). A line that does not start with "ts=" is not one of the
// service's lines: it is printed as {"__raw": line} so a test can count it.
'use strict';
const logfmt = require('logfmt');
const lines = require('fs').readFileSync(0, 'utf8').split('\n');
for (const line of lines) {
  if (line === '') continue;
  console.log(JSON.stringify(line.startsWith('ts=') ? logfmt.parse(line) : { __raw: line }));
}
