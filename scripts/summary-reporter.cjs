// Mocha reporter: the spec reporter's output, then one closing line "N passed, N failed" that CI
// reads, followed on a developer's machine by ", N skipped (missing S: n, …)". A suite skips only
// when a service it needs is missing; its require helper announces that on the process with
// `process.emit("mottainai:test-skip", service, problem)` just before the suite calls
// this.skip(), and this reporter prints one line per distinct problem (what to start) and counts
// the skipped tests per service. In CI (CI set) a skipped test is a failure: the helpers throw
// there instead, and any skip left is counted as failed.
"use strict";
const Mocha = require("mocha");

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const ci = Boolean(process.env.CI);
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    /** The service last announced, until a test runs. */
    let announced;
    const announcedProblems = new Set();
    const serviceOfSuite = new Map();
    const skippedPerService = new Map();
    const onSkipNotice = (service, problem) => {
      announced = service;
      const line = `${service}: ${problem}`;
      if (announcedProblems.has(line)) return;
      announcedProblems.add(line);
      process.stdout.write(`skipping what needs ${line}\n`);
    };
    process.on("mottainai:test-skip", onSkipNotice);
    // A test that ran means the last announcement was not about a skip that follows.
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => (passed++, (announced = undefined)));
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => (failed++, (announced = undefined)));
    const serviceOf = (suite) => {
      for (let s = suite; s; s = s.parent) if (serviceOfSuite.has(s)) return serviceOfSuite.get(s);
      return undefined;
    };
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, (test) => {
      skipped++;
      if (ci) process.stdout.write(`skipped in CI, counted as failed: ${test.fullTitle()}\n`);
      const service = serviceOf(test.parent) ?? announced ?? "other";
      serviceOfSuite.set(test.parent, service);
      skippedPerService.set(service, (skippedPerService.get(service) ?? 0) + 1);
    });
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      process.off("mottainai:test-skip", onSkipNotice);
      if (ci && skipped > 0) {
        failed += skipped;
        runner.failures += skipped;
      }
      const why = [...skippedPerService].map(([service, n]) => `${service}: ${n}`).join(", ");
      process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped (missing ${why})` : ""}\n`);
    });
  }
}

module.exports = SummaryReporter;
