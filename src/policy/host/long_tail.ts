/**
 * The long tail of the `kumo` module (lua-api.md §8): throttles, time,
 * uuid, digest, encode, fs, regex, secrets, http client, tasks, messages
 * and the admin API — gathered here so the catalogue registers them with
 * one spread each ({@link longTailSync}, {@link longTailAsync}).
 *
 * Place on the path: policy. Besides the functions it adds the host-object
 * plumbing (`kumo.__obj_*`, `kumo.__lua_glue`) the prelude uses to give
 * these functions' objects their Lua shape (host_object.ts), and the
 * refusals of what kumo-edge does not implement (unsupported.ts).
 *
 * @module
 */

import type { PolicyEngine } from "../engine.ts";
import type { PolicyRuntime } from "../runtime.ts";
import { HOST_OBJECT_ASYNC, HOST_OBJECT_SYNC, hostObjectGlue } from "./host_object.ts";
import { THROTTLE_FUNCTIONS } from "./throttle.ts";
import { TIME_ASYNC_FUNCTIONS, TIME_SYNC_FUNCTIONS } from "./time.ts";
import { UUID_FUNCTIONS } from "./uuid.ts";
import { DIGEST_FUNCTIONS } from "./digest.ts";
import { ENCODE_FUNCTIONS } from "./encode.ts";
import { FS_FUNCTIONS } from "./fs.ts";
import { REGEX_FUNCTIONS } from "./regex.ts";
import { secretsFunctions } from "./secrets.ts";
import { HTTP_FUNCTIONS } from "./http_client.ts";
import { taskFunctions } from "./tasks.ts";
import { UNSUPPORTED_LUA } from "./unsupported.ts";
import { TRACE_HEADER_FUNCTIONS } from "./trace_header.ts";
import { RFC3464_FUNCTIONS } from "./rfc3464.ts";
import { CONFIG_FORMAT_FUNCTIONS } from "./config_format.ts";

type Fn = (...args: never[]) => unknown;
type AsyncFn = (...args: never[]) => Promise<unknown>;

function build(engine: () => PolicyEngine | undefined, runtime: PolicyRuntime) {
  const tasks = taskFunctions(engine, runtime);
  const sync: Record<string, Fn> = {
    ...THROTTLE_FUNCTIONS,
    ...TIME_SYNC_FUNCTIONS,
    ...UUID_FUNCTIONS,
    ...DIGEST_FUNCTIONS,
    ...ENCODE_FUNCTIONS,
    ...FS_FUNCTIONS,
    ...REGEX_FUNCTIONS,
    ...HTTP_FUNCTIONS,
    ...tasks.sync,
    ...TRACE_HEADER_FUNCTIONS,
    ...RFC3464_FUNCTIONS,
    ...CONFIG_FORMAT_FUNCTIONS,
  };
  const async: Record<string, AsyncFn> = {
    ...TIME_ASYNC_FUNCTIONS,
    ...secretsFunctions(engine),
    ...tasks.async,
  };
  return {
    sync: {
      ...sync,
      ...HOST_OBJECT_SYNC,
      ...hostObjectGlue(Object.keys(sync), Object.keys(async), [["unsupported", UNSUPPORTED_LUA]]),
    },
    async: { ...async, ...HOST_OBJECT_ASYNC },
  };
}

/** Synchronous long-tail functions by dotted name. */
export function longTailSync(
  engine: () => PolicyEngine | undefined,
  runtime: PolicyRuntime,
): Record<string, Fn> {
  return build(engine, runtime).sync;
}

/** Asynchronous long-tail functions by dotted name. */
export function longTailAsync(
  engine: () => PolicyEngine | undefined,
  runtime: PolicyRuntime,
): Record<string, AsyncFn> {
  return build(engine, runtime).async;
}
