/**
 * Reads a request's parameters as pve-http-server does: GET/DELETE from the query string
 * only, POST/PUT from a form, JSON or multipart body with query parameters merged over it.
 */
import type { UploadedFile } from "./endpoint.ts";
import { PveHttpError } from "./http_error.ts";

export interface RequestParams {
  params: Record<string, unknown>;
  /** JSON bodies may carry typed values (true/false, numbers). */
  json: boolean;
  file?: UploadedFile;
}

export interface RawRequest {
  method: string;
  url: URL;
  headers: Headers;
  body: Uint8Array;
}

export async function readParams(request: RawRequest): Promise<RequestParams> {
  const { method, body, url } = request;
  const query = Object.fromEntries(url.searchParams);
  if (method === "GET" || method === "DELETE") {
    if (body.length > 0) throw new PveHttpError(501, `Unexpected content for method '${method}'`);
    return { params: query, json: false };
  }
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (body.length === 0) return { params: query, json: false };
  if (type.startsWith("application/json")) {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new PveHttpError(400, "JSON body must be an object");
    }
    return { params: { ...parsed as Record<string, unknown>, ...query }, json: true };
  }
  if (type.startsWith("multipart/form-data")) {
    const form = await new Response(body as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": type },
    })
      .formData();
    const params: Record<string, unknown> = {};
    let file: UploadedFile | undefined;
    for (const [key, value] of form) {
      if (typeof value === "string") {
        params[key] = value;
      } else {
        // pveproxy spools the file and passes its name as the parameter's value.
        params[key] = value.name;
        file = { filename: value.name, data: new Uint8Array(await value.arrayBuffer()) };
      }
    }
    return {
      params: { ...params, ...query },
      json: false,
      ...(file === undefined ? {} : { file }),
    };
  }
  const form = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(body)));
  return { params: { ...form, ...query }, json: false };
}
