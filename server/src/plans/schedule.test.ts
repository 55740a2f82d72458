import assert from "node:assert/strict";
import { latestOccurrence, nextOccurrence, ScheduleError, validateSchedule } from "./schedule.js";

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
/** The next `count` occurrences after `after`, as ISO strings. */
function series(planned: string, after: string, count: number, timezone = "", anchor = 0): string[] {
  const out: string[] = [];
  let at = t(after);
  for (let i = 0; i < count; i++) {
    const next = nextOccurrence({ planned, anchor }, at, timezone);
    assert.ok(next !== undefined);
    out.push(iso(next)!);
    at = next;
  }
  return out;
}

function scheduleError(planned: string, timezone = ""): ScheduleError {
  try {
    validateSchedule(planned, timezone);
  } catch (err) {
    if (err instanceof ScheduleError) return err;
    throw err;
  }
  assert.fail(`${planned} was accepted`);
}

// 2026-01-05 is a Monday.
describe("plan schedule", () => {
  it("reads 6 fields with seconds first, strictly after the reference", () => {
    assert.deepEqual(series("0 0 16 * * *", "2026-01-05T15:59:59.999Z", 2), [
      "2026-01-05T16:00:00.000Z",
      "2026-01-06T16:00:00.000Z",
    ]);
    assert.equal(
      iso(nextOccurrence({ planned: "0 0 16 * * *", anchor: 0 }, t("2026-01-05T16:00:00Z"), "")),
      "2026-01-06T16:00:00.000Z",
    );
    assert.deepEqual(series("*/20 * * * * *", "2026-01-05T16:00:00Z", 3), [
      "2026-01-05T16:00:20.000Z",
      "2026-01-05T16:00:40.000Z",
      "2026-01-05T16:01:00.000Z",
    ]);
    assert.deepEqual(series("5/20 * * * * *", "2026-01-05T16:00:00Z", 3), [
      "2026-01-05T16:00:05.000Z",
      "2026-01-05T16:00:25.000Z",
      "2026-01-05T16:00:45.000Z",
    ]);
  });

  it("reads 5 fields minute first, at second 0, with names and ?", () => {
    assert.deepEqual(series("30 2 * * *", "2026-01-05T00:00:00Z", 2), ["2026-01-05T02:30:00.000Z", "2026-01-06T02:30:00.000Z"]);
    assert.deepEqual(series("0 9 * jan-mar mon,fri", "2026-01-05T10:00:00Z", 3), [
      "2026-01-09T09:00:00.000Z",
      "2026-01-12T09:00:00.000Z",
      "2026-01-16T09:00:00.000Z",
    ]);
    assert.deepEqual(series("0 0 0 1 * ?", "2026-01-05T00:00:00Z", 1), ["2026-02-01T00:00:00.000Z"]);
  });

  it("matches day of month OR day of week when both are restricted, like robfig/cron", () => {
    assert.deepEqual(series("0 0 13 * 5", "2026-01-05T00:00:00Z", 3), [
      "2026-01-09T00:00:00.000Z",
      "2026-01-13T00:00:00.000Z",
      "2026-01-16T00:00:00.000Z",
    ]);
    assert.deepEqual(series("0 0 * * 2", "2026-01-05T00:00:00Z", 1), ["2026-01-06T00:00:00.000Z"]);
  });

  it("reads every descriptor", () => {
    const after = "2026-01-05T10:20:30Z";
    assert.deepEqual(series("@yearly", after, 1), ["2027-01-01T00:00:00.000Z"]);
    assert.deepEqual(series("@annually", after, 1), ["2027-01-01T00:00:00.000Z"]);
    assert.deepEqual(series("@monthly", after, 1), ["2026-02-01T00:00:00.000Z"]);
    assert.deepEqual(series("@weekly", after, 1), ["2026-01-11T00:00:00.000Z"]);
    assert.deepEqual(series("@daily", after, 1), ["2026-01-06T00:00:00.000Z"]);
    assert.deepEqual(series("@midnight", after, 1), ["2026-01-06T00:00:00.000Z"]);
    assert.deepEqual(series("@hourly", after, 2), ["2026-01-05T11:00:00.000Z", "2026-01-05T12:00:00.000Z"]);
  });

  it("counts @every from the anchor (rounded down to the second), whatever the reference", () => {
    const anchor = t("2026-01-05T10:00:00.400Z");
    assert.deepEqual(series("@every 1h30m", "2026-01-05T09:00:00Z", 3, "", anchor), [
      "2026-01-05T11:30:00.000Z",
      "2026-01-05T13:00:00.000Z",
      "2026-01-05T14:30:00.000Z",
    ]);
    assert.equal(
      iso(nextOccurrence({ planned: "@every 1h30m", anchor }, t("2026-01-05T12:59:59.999Z"), "")),
      "2026-01-05T13:00:00.000Z",
    );
    assert.deepEqual(series("@every 1s", "2026-01-05T10:00:00.400Z", 2, "", anchor), [
      "2026-01-05T10:00:01.000Z",
      "2026-01-05T10:00:02.000Z",
    ]);
    // robfig/cron v1 rounds @every down to whole seconds, at least one.
    assert.deepEqual(series("@every 1.5s", "2026-01-05T10:00:00Z", 2, "", anchor), [
      "2026-01-05T10:00:01.000Z",
      "2026-01-05T10:00:02.000Z",
    ]);
    assert.deepEqual(series("@every 10ms", "2026-01-05T10:00:00Z", 1, "", anchor), ["2026-01-05T10:00:01.000Z"]);
  });

  it("reads cron fields in the plan's time zone, across a daylight saving change", () => {
    assert.deepEqual(series("0 30 2 * * *", "2026-01-05T00:00:00Z", 1, "Europe/Rome"), ["2026-01-05T01:30:00.000Z"]);
    assert.deepEqual(series("0 0 9 * * *", "2026-03-28T12:00:00Z", 2, "Europe/Rome"), [
      "2026-03-29T07:00:00.000Z",
      "2026-03-30T07:00:00.000Z",
    ]);
    assert.deepEqual(series("0 0 16 * * *", "2026-01-05T00:00:00Z", 1, "America/New_York"), ["2026-01-05T21:00:00.000Z"]);
    assert.deepEqual(series("@daily", "2026-01-05T00:00:00Z", 1, "Asia/Tokyo"), ["2026-01-05T15:00:00.000Z"]);
  });

  it("finds the latest occurrence of a gap (what catch_up once fires)", () => {
    const s = { planned: "0 0 * * * *", anchor: 0 };
    assert.equal(iso(latestOccurrence(s, t("2026-01-05T08:00:00Z"), t("2026-01-05T11:59:59Z"), "")), "2026-01-05T11:00:00.000Z");
    assert.equal(iso(latestOccurrence(s, t("2026-01-05T08:00:00Z"), t("2026-01-05T11:00:00Z"), "")), "2026-01-05T11:00:00.000Z");
    assert.equal(latestOccurrence(s, t("2026-01-05T08:00:01Z"), t("2026-01-05T08:59:59Z"), ""), undefined);
    const every = { planned: "@every 1h30m", anchor: t("2026-01-05T10:00:00Z") };
    assert.equal(iso(latestOccurrence(every, 0, t("2026-01-05T15:00:00Z"), "")), "2026-01-05T14:30:00.000Z");
    assert.equal(latestOccurrence(every, 0, t("2026-01-05T11:29:59Z"), ""), undefined);
  });

  it("refuses bad expressions with the expression and why, naming the field", () => {
    const forms =
      'a cron expression with 6 fields (seconds first) or 5, a descriptor such as @daily, or "@every <duration>" such as "@every 1h30m"';
    const cases: [string, string][] = [
      ["* * *", `expected ${forms}; got "* * *" (3 fields)`],
      ["0 75 * * * *", 'invalid minute field "75" (values 0-59) in "0 75 * * * *"'],
      ["0 0 * * 8", 'invalid day of week field "8" (values 0-6 or sun-sat) in "0 0 * * 8"'],
      ["0 0 32 * *", 'invalid day of month field "32" (values 1-31) in "0 0 32 * *"'],
      [
        "@often",
        'unknown schedule "@often": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or "@every <duration>"',
      ],
      ["@every soon", 'invalid duration "soon" after @every: expected a Go duration such as 90s, 15m or 1h30m'],
      ["@every 0s", 'the duration after @every must be longer than zero, got "0s"'],
      ["", `required: ${forms}`],
    ];
    for (const [planned, message] of cases) {
      const err = scheduleError(planned);
      assert.equal(err.field, "planned", planned);
      assert.equal(err.message, message);
    }
    const zone = scheduleError("@daily", "Mars/Olympus");
    assert.equal(zone.field, "timezone");
    assert.equal(zone.message, 'unknown time zone "Mars/Olympus": expected an IANA name such as UTC or Europe/Rome');
  });
});
