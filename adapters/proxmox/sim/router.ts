/** Finds the endpoint for a method and path; `{name}` segments capture path parameters. */
import type { Endpoint, HttpMethod } from "./endpoint.ts";

interface Route {
  endpoint: Endpoint;
  segments: string[];
}

export type RouteMatch =
  | { endpoint: Endpoint; pathParams: Record<string, string> }
  | undefined;

export class Router {
  readonly #routes: Route[];

  constructor(endpoints: readonly Endpoint[]) {
    this.#routes = endpoints.map((endpoint) => ({
      endpoint,
      segments: endpoint.path.split("/").slice(1),
    }));
  }

  /** `path` is the raw path below `/api2/json`, still percent-encoded. */
  match(method: HttpMethod | string, path: string): RouteMatch {
    const parts = path.split("/").slice(1);
    if (parts.at(-1) === "") parts.pop();
    for (const route of this.#routes) {
      if (route.endpoint.method !== method || route.segments.length !== parts.length) continue;
      const pathParams: Record<string, string> = {};
      const ok = route.segments.every((segment, i) => {
        const part = decodeSegment(parts[i]!);
        if (part === undefined) return false;
        if (segment.startsWith("{")) {
          pathParams[segment.slice(1, -1)] = part;
          return part !== "";
        }
        return segment === part;
      });
      if (ok) return { endpoint: route.endpoint, pathParams };
    }
    return undefined;
  }

  endpoints(): Endpoint[] {
    return this.#routes.map((r) => r.endpoint);
  }
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
