/**
 * `kumo.secrets.load(keysource)`: read a secret from a KeySource
 * (lua-api.md §0.3): a path string, `{ key_data = '...' }`, or
 * `{ event_name = 'x', event_args = {...} }` (the policy's handler for
 * event `x` is called with the args and returns the secret). Vault sources
 * raise an error saying they are not supported.
 *
 * Place on the path: policy helpers; reads a file or calls another event.
 *
 * @module
 */

import type { PolicyEngine } from "../engine.ts";
import { luaBytes } from "./host_object.ts";

/** Load the bytes a key source names. */
export async function loadKeySource(
  engine: () => PolicyEngine | undefined,
  src: unknown,
): Promise<Uint8Array> {
  if (typeof src === "string") {
    try {
      return await Deno.readFile(src);
    } catch (e) {
      throw new Error(`Cannot load secret from "${src}": ${(e as Error).message}`);
    }
  }
  if (typeof src === "object" && src !== null && !Array.isArray(src)) {
    const o = src as Record<string, unknown>;
    if (typeof o.key_data === "string") return new TextEncoder().encode(o.key_data);
    if (o.vault_path !== undefined || o.vault_mount !== undefined) {
      throw new Error(
        `Cannot load secret from vault path "${o.vault_path}": vault key sources are not supported by kumo-edge`,
      );
    }
    if (typeof o.event_name === "string") {
      const e = engine();
      if (!e) throw new Error(`Cannot load secret from event "${o.event_name}": policy not loaded`);
      const args = Array.isArray(o.event_args) ? o.event_args : [];
      const v = await e.callOrThrow(o.event_name, "", args);
      if (typeof v !== "string") {
        throw new Error(`Cannot load secret from event "${o.event_name}": it returned no string`);
      }
      return new TextEncoder().encode(v);
    }
  }
  throw new TypeError(
    `Cannot load secret from ${
      JSON.stringify(src)
    }: expected a path, { key_data = ... } or { event_name = ... }`,
  );
}

/** `kumo.secrets.load`. */
export function secretsFunctions(
  engine: () => PolicyEngine | undefined,
): Record<string, (...args: never[]) => Promise<unknown>> {
  return {
    "secrets.load": (async (src: unknown) => luaBytes(await loadKeySource(engine, src))) as (
      ...args: never[]
    ) => Promise<unknown>,
  };
}
