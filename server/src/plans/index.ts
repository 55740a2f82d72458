export { PlanScheduler, type PlanSchedulerOptions } from "./plan-scheduler.js";
export {
  createTaskLauncher,
  PLAN_ID_ENV,
  type LaunchRequest,
  type PlanTargetLauncher,
  type TaskLauncherOptions,
} from "./plan-target-launcher.js";
export { latestOccurrence, nextOccurrence, ScheduleError, validateSchedule, type Schedule } from "./schedule.js";
export * from "./plan-events.js";
