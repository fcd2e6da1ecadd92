/**
 * Reads a request's parameters as pve-http-server does: GET/DELETE from the query string
 * only, POST/PUT from a form, JSON or multipart body with query parameters merged over it.
 */
import type { UploadedFile } from "./endpoint.ts";
import { PveHttpError } from "./http_error.ts";
import type { SpooledForm } from "./multipart.ts";

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
  /** A multipart/form-data body as the server read it (its file part spooled). */
  form?: SpooledForm;
}

export function readParams(request: RawRequest): RequestParams {
  const { method, body, url } = request;
  const query = Object.fromEntries(url.searchParams);
  if (method === "GET" || method === "DELETE") {
    if (body.length > 0) throw new PveHttpError(501, `Unexpected content for method '${method}'`);
    return { params: query, json: false };
  }
  if (request.form !== undefined) {
    const { fields, file } = request.form;
    // pveproxy spools the file and passes its name as the parameter's value.
    const params: Record<string, unknown> = { ...fields };
    let uploaded: UploadedFile | undefined;
    if (file !== undefined) {
      params[file.field] = file.filename;
      uploaded = { filename: file.filename, path: file.path, size: file.size };
    }
    return {
      params: { ...params, ...query },
      json: false,
      ...(uploaded === undefined ? {} : { file: uploaded }),
    };
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
  const form = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(body)));
  return { params: { ...form, ...query }, json: false };
}
