export { loadServerConfig, ConfigError, type ServerConfig } from "./config.js";
export { startServer, type MottainaiServer } from "./server.js";
export { requireJongodb, startJongodb, type JongodbServer } from "./mongo/jongodb-server.js";
