export { createWebRoute } from "./web-route.js";
