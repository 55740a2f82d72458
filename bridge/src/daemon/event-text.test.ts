import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, TaskResult, TaskStatus } from "@mottainai/proto";
import { eventText } from "./event-text.js";

describe("eventText", () => {
  const finished = create(EventSchema, {
    sequence: 7n,
    type: "task.finished",
    subjectId: "01H9",
    payload: {
      case: "task",
      value: {
        id: "01H9",
        spec: { name: "hello.yaml" },
        status: TaskStatus.DONE,
        result: TaskResult.SUCCESS,
        startTime: timestampFromMs(1000),
        endTime: timestampFromMs(13_000),
      },
    },
    attributes: { attempt: "1", result: "success" },
  });

  it("writes the default line of a task and of other events", () => {
    assert.equal(eventText(finished, "http://ci"), "task 01H9 hello.yaml finished: success (12 s) http://ci/tasks/01H9");
    const moved = create(EventSchema, {
      type: "namespace.tag_moved",
      subjectId: "repo",
      attributes: { namespace: "repo", tag: "latest", revision: "3", previous: "2" },
    });
    assert.equal(eventText(moved, "http://ci"), "namespace.tag_moved repo namespace=repo previous=2 revision=3 tag=latest");
    const gap = create(EventSchema, { type: "events.gap", attributes: { from_sequence: "3", to_sequence: "9" } });
    assert.equal(eventText(gap, ""), "events 3-9 are no longer kept by the server: not notified");
  });

  it("fills a notifier's template, on one line", () => {
    assert.equal(
      eventText(finished, "http://ci", "[{kind}] {name}: {result}\n{duration} #{sequence} {attr.attempt} {nope}"),
      "[task] hello.yaml: success 12 s #7 1",
    );
  });
});
