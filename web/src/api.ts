import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";

const KEY = "mottainai.token";

/** The API token of this browser tab (sessionStorage: gone when the tab closes). */
export const session = {
  token: (): string => sessionStorage.getItem(KEY) ?? "",
  signIn: (token: string) => sessionStorage.setItem(KEY, token.trim()),
  signOut: () => sessionStorage.removeItem(KEY),
};

const auth: Interceptor = (next) => (req) => {
  const token = session.token();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [auth] });

/** A Connect client of one mottainai.v1 service on the server that served this page. */
export function client<T extends DescService>(service: T): Client<T> {
  return createClient(service, transport);
}
