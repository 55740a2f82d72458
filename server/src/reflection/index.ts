export { registerReflection } from "./server-reflection.js";
