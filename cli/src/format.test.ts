import assert from "node:assert/strict";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { NodeState, Role, SpecError, TaskResult, TaskStatus } from "@mottainai/proto";
import {
  TASK_STATUS_WORDS,
  formatErrorMessage,
  formatTimestamp,
  nodeStateWord,
  orNone,
  parseTaskStatus,
  roleWord,
  taskResultWord,
  taskStatusWord,
} from "./format.js";

describe("format", () => {
  it("names task statuses with the original's words", () => {
    assert.deepEqual(
      [TaskStatus.WAITING, TaskStatus.SETUP, TaskStatus.RUNNING, TaskStatus.DONE, TaskStatus.STOP, TaskStatus.STOPPED].map(
        taskStatusWord,
      ),
      ["waiting", "setup", "running", "done", "stop", "stopped"],
    );
    assert.deepEqual(TASK_STATUS_WORDS, ["waiting", "setup", "running", "done", "stop", "stopped"]);
    assert.equal(taskStatusWord(TaskStatus.UNSPECIFIED), "unknown");
    assert.equal(taskStatusWord(42 as TaskStatus), "42");
  });

  it("names task results with the original's words, UNSPECIFIED being none", () => {
    assert.deepEqual([TaskResult.UNSPECIFIED, TaskResult.SUCCESS, TaskResult.FAILED, TaskResult.ERROR].map(taskResultWord), [
      "none",
      "success",
      "failed",
      "error",
    ]);
  });

  it("names node states and roles", () => {
    assert.deepEqual([NodeState.ONLINE, NodeState.OFFLINE, NodeState.DRAINING].map(nodeStateWord), [
      "online",
      "offline",
      "draining",
    ]);
    assert.deepEqual([Role.USER, Role.MANAGER, Role.ADMIN].map(roleWord), ["user", "manager", "admin"]);
  });

  it("parses every status word back, and nothing else", () => {
    for (const word of TASK_STATUS_WORDS) {
      const status = parseTaskStatus(word);
      assert.notEqual(status, undefined);
      assert.equal(taskStatusWord(status!), word);
    }
    assert.equal(parseTaskStatus("unknown"), undefined);
    assert.equal(parseTaskStatus("RUNNING"), undefined);
    assert.equal(parseTaskStatus("1"), undefined);
  });

  it("formats timestamps as ISO 8601 UTC to the second, and absent ones as -", () => {
    assert.equal(formatTimestamp(timestampFromMs(Date.UTC(2025, 0, 2, 3, 4, 5, 678))), "2025-01-02T03:04:05Z");
    assert.equal(formatTimestamp(undefined), "-");
    assert.equal(orNone(""), "-");
    assert.equal(orNone(0), "0");
  });

  it("formats a ConnectError as its code in lower snake words and its raw message", () => {
    assert.equal(formatErrorMessage(new ConnectError("bad token", Code.Unauthenticated)), "unauthenticated: bad token");
    assert.equal(formatErrorMessage(new ConnectError('task "x" not found', Code.NotFound)), 'not_found: task "x" not found');
    assert.equal(formatErrorMessage(new ConnectError("no", Code.InvalidArgument)), "invalid_argument: no");
    assert.equal(formatErrorMessage(new ConnectError("late", Code.DeadlineExceeded)), "deadline_exceeded: late");
  });

  it("keeps a SpecError's message as it is and any error to one line", () => {
    const error = new SpecError("timeout", 'expected a number of seconds, got "abc"', "task.yaml");
    assert.equal(formatErrorMessage(error), 'task.yaml: field "timeout": expected a number of seconds, got "abc"');
    assert.equal(formatErrorMessage(new Error("first\nsecond")), "first");
    assert.equal(formatErrorMessage("plain"), "plain");
  });
});
