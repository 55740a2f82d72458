// The part of irc-framework (CommonJS, untyped) the IRC notifier uses.
declare module "irc-framework" {
  import { EventEmitter } from "node:events";

  export class Client extends EventEmitter {
    constructor(options?: Record<string, unknown>);
    connect(options?: Record<string, unknown>): void;
    join(channel: string, key?: string): void;
    say(target: string, message: string): void;
    changeNick(nick: string): void;
    quit(message?: string): void;
    ping(message?: string): void;
    connected: boolean;
    user: { nick: string };
  }
  const irc: { Client: typeof Client };
  export default irc;
}
