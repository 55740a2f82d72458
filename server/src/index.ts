export { loadServerConfig, ConfigError, type ServerConfig } from "./config.js";
export { startServer, type MottainaiServer } from "./server.js";
