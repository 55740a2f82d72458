import assert from "node:assert/strict";
import { CatchUp } from "../gen/mottainai/v1/plan_pb.js";
import { parsePlanFile } from "./plan-file.js";
import { SpecError } from "./spec-error.js";

const TASK_PLAN = 'type: host\nscript: [make]\nplanned: "@daily"\n';

function specError(parse: () => unknown): SpecError {
  try {
    parse();
  } catch (err) {
    if (err instanceof SpecError) return err;
    throw err;
  }
  assert.fail("expected a SpecError");
}

describe("parsePlanFile timezone and catch_up", () => {
  it("defaults to UTC (empty) and catch-up unspecified (skip)", () => {
    const spec = parsePlanFile(TASK_PLAN);
    assert.equal(spec.timezone, "");
    assert.equal(spec.catchUp, CatchUp.UNSPECIFIED);
  });

  it("reads an IANA timezone and both catch_up policies", () => {
    const once = parsePlanFile(`${TASK_PLAN}timezone: Europe/Rome\ncatch_up: once\n`);
    assert.equal(once.timezone, "Europe/Rome");
    assert.equal(once.catchUp, CatchUp.ONCE);
    assert.equal(parsePlanFile(`${TASK_PLAN}catch_up: skip\n`).catchUp, CatchUp.SKIP);
  });

  it("accepts them in a pipeline plan too", () => {
    const spec = parsePlanFile(
      'planned: "@hourly"\ntimezone: America/New_York\npipeline_name: p\nchain: [a]\ntasks:\n  a: {type: host, script: [true]}\n',
    );
    assert.equal(spec.target.case, "pipeline");
    assert.equal(spec.timezone, "America/New_York");
  });

  it("refuses an unknown timezone and an unknown catch_up, naming the field", () => {
    const tz = specError(() => parsePlanFile(`${TASK_PLAN}timezone: Mars/Olympus\n`));
    assert.equal(tz.field, "timezone");
    assert.equal(
      tz.message,
      'field "timezone": unknown time zone "Mars/Olympus": expected an IANA name such as UTC or Europe/Rome',
    );
    const catchUp = specError(() => parsePlanFile(`${TASK_PLAN}catch_up: all\n`));
    assert.equal(catchUp.field, "catch_up");
    assert.equal(catchUp.message, 'field "catch_up": expected "skip" or "once", got "all"');
  });
});
